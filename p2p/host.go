package p2p

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/observed"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/p2p/sec"
)

// Config configures a Host. Only Key is required; the zero value of every
// other field selects its documented default.
type Config struct {
	// Key is the node's ed25519 identity key.
	Key ed25519.PrivateKey
	// ListenAddrs are bound at start (e.g. /ip4/0.0.0.0/tcp/4001); none
	// means a dial-only host.
	ListenAddrs []ma.Multiaddr
	// Network is the network name in every protocol ID (default "share").
	Network string
	// Transport opens raw connections (default TCP).
	Transport Transport
	// AgentVersion is announced by identify (default "share/0.1").
	AgentVersion string
	// Logger receives connection-level events (default: discarded).
	Logger *slog.Logger
	// AddrStore persists the peerstore's addresses, in a keyspace of
	// their own (default: memory only).
	AddrStore share.KV
	// IsNotFound tells AddrStore's "missing key" error apart from real
	// failures (default: every Get error means missing).
	IsNotFound func(error) bool
	// Protector, if set, wraps every raw connection before anything else
	// is sent: the place for a private-network (pre-shared key) layer.
	Protector Protector
	// StreamMeter, if set, is asked once per stream, when its protocol is
	// known, for the functions that count its payload bytes in and out
	// (either may be nil): the place for per-protocol traffic metrics.
	StreamMeter func(protocol string) (in, out func(n int))
	// Limits bound connections and streams.
	Limits Limits
	// HandshakeTimeout bounds the whole upgrade of a raw connection:
	// security negotiation, TLS and muxer negotiation (default 10 s).
	HandshakeTimeout time.Duration
	// NegotiationTimeout bounds protocol negotiation on an inbound stream
	// (default 10 s).
	NegotiationTimeout time.Duration
	// KeepAlive is the yamux keepalive interval (default 30 s).
	KeepAlive time.Duration
	// StreamWindow is the yamux receive window of each stream (default
	// 2 MiB: a 1 Gbit/s x 10 ms path needs 1.25 MB); windows may grow to
	// 16 MiB with yamux's auto-tuning.
	StreamWindow uint32
	// Observed tunes the confirmation of observed addresses.
	Observed observed.Config
	// ReadBuffer is the size of the buffered reader between TLS and yamux
	// (default 64 KiB).
	ReadBuffer int
}

// Limits bound the resources a host gives to peers.
type Limits struct {
	// MaxInbound and MaxOutbound bound connections by direction
	// (default 1024 each).
	MaxInbound, MaxOutbound int
	// MaxPendingHandshakes bounds inbound connections still in their
	// handshake (default 128).
	MaxPendingHandshakes int
	// MaxStreamsPerPeer bounds the inbound streams a peer may have open at
	// once; more are reset (default 512).
	MaxStreamsPerPeer int
	// HighWater and LowWater: above HighWater connections, the idlest ones
	// outside their grace period are closed until LowWater remain
	// (defaults 900 and 600).
	HighWater, LowWater int
	// GracePeriod protects new connections from trimming (default 1 min).
	GracePeriod time.Duration
	// TrimInterval is how often the watermarks are checked (default 1 min).
	TrimInterval time.Duration
}

// Protector wraps a raw connection, e.g. to encrypt it with a pre-shared
// network key, before anything else is sent on it; it must fail for peers
// that do not hold the key. It runs on both dialled and accepted
// connections, under the handshake deadline, and the host closes the raw
// connection if it fails.
type Protector func(net.Conn) (net.Conn, error)

// Errors returned by the host.
var (
	ErrClosed       = errors.New("host closed")
	ErrNoAddresses  = errors.New("no addresses to dial")
	ErrSelfDial     = errors.New("dial to self")
	ErrConnLimit    = errors.New("connection limit reached")
	ErrNotConnected = errors.New("not connected")
	// ErrOtherNetwork means the peer answered, but on another network
	// (another Config.Network): the connection is closed. Its kind is
	// errs.OtherNetwork.
	ErrOtherNetwork = errs.New(errs.OtherNetwork, "peer is on another network")
)

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return cfg, fmt.Errorf("config: Key: %w", peer.ErrInvalidKey)
	}
	if cfg.Network == "" {
		cfg.Network = DefaultNetwork
	}
	for _, r := range cfg.Network {
		if r == '/' || r == '\n' || r == ' ' {
			return cfg, fmt.Errorf("config: Network %q: must not contain '/', spaces or newlines", cfg.Network)
		}
	}
	if cfg.Transport == nil {
		cfg.Transport = &TCP{}
	}
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = "share/0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IsNotFound == nil {
		cfg.IsNotFound = func(error) bool { return true }
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setInt := func(n *int, def int) {
		if *n <= 0 {
			*n = def
		}
	}
	setDur(&cfg.HandshakeTimeout, 10*time.Second)
	setDur(&cfg.NegotiationTimeout, 10*time.Second)
	setDur(&cfg.KeepAlive, 30*time.Second)
	if cfg.StreamWindow == 0 {
		cfg.StreamWindow = 2 << 20
	}
	if cfg.StreamWindow < 256<<10 || cfg.StreamWindow > maxStreamWindow {
		return cfg, fmt.Errorf("config: StreamWindow %d: must be between 256 KiB and 16 MiB", cfg.StreamWindow)
	}
	setInt(&cfg.ReadBuffer, 64<<10)
	l := &cfg.Limits
	setInt(&l.MaxInbound, 1024)
	setInt(&l.MaxOutbound, 1024)
	setInt(&l.MaxPendingHandshakes, 128)
	setInt(&l.MaxStreamsPerPeer, 512)
	setInt(&l.HighWater, 900)
	setInt(&l.LowWater, 600)
	if l.LowWater > l.HighWater {
		return cfg, fmt.Errorf("config: Limits.LowWater %d above HighWater %d", l.LowWater, l.HighWater)
	}
	setDur(&l.GracePeriod, time.Minute)
	setDur(&l.TrimInterval, time.Minute)
	return cfg, nil
}

// StreamHandler serves one inbound stream. It sets its own deadlines
// (every read of remote bytes should have one) and closes the stream; a
// stream still open when the handler returns is reset. Host.Close waits
// for running handlers, which end as their streams are reset.
type StreamHandler func(*Stream)

// Host is a node on the network: it listens, dials, keeps connections and
// hands streams to protocol handlers. Its methods are safe for concurrent
// use.
type Host struct {
	cfg     Config
	log     *slog.Logger
	id      peer.ID
	ident   *sec.Identity
	network string
	ps      *Peerstore
	obs     *observed.Manager

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	listeners []Listener
	pending   chan struct{} // semaphore of inbound handshakes

	hmu      sync.RWMutex
	handlers map[string]StreamHandler
	// Circuit relay hooks (circuit.go), under hmu.
	circuits     CircuitDialer
	addrSources  []func() []ma.Multiaddr
	directWaiter DirectWaiter // limited.go

	mu        sync.Mutex
	closed    bool
	conns     map[peer.ID][]*Conn
	dials     map[peer.ID]*dialCall
	nIn, nOut int
	protected map[peer.ID]map[string]struct{}
	subs      map[*Subscription]struct{}
	trimCh    chan struct{}
	punchFrom map[netip.AddrPort]expectedPunch // holepunch.go
}

// NewHost starts a host: it binds Config.ListenAddrs, loads the peerstore
// and registers identify and ping. Close stops it.
func NewHost(ctx context.Context, c Config) (*Host, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	ident, err := sec.NewIdentity(cfg.Key)
	if err != nil {
		return nil, err
	}
	ps, err := newPeerstore(cfg.AddrStore, cfg.IsNotFound, cfg.Logger)
	if err != nil {
		return nil, err
	}
	h := &Host{
		cfg:       cfg,
		log:       cfg.Logger.With("self", ident.ID().ShortString()),
		id:        ident.ID(),
		ident:     ident,
		network:   cfg.Network,
		ps:        ps,
		pending:   make(chan struct{}, cfg.Limits.MaxPendingHandshakes),
		handlers:  map[string]StreamHandler{},
		conns:     map[peer.ID][]*Conn{},
		dials:     map[peer.ID]*dialCall{},
		protected: map[peer.ID]map[string]struct{}{},
		subs:      map[*Subscription]struct{}{},
		obs:       observed.New(cfg.Observed),
		trimCh:    make(chan struct{}, 1),
	}
	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	h.SetHandler(h.IdentifyProtocol(), h.serveIdentify)
	h.SetHandler(h.PingProtocol(), h.servePing)
	for _, la := range cfg.ListenAddrs {
		ln, err := cfg.Transport.Listen(la)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("listen %s: %w", la, err)
		}
		h.listeners = append(h.listeners, ln)
		h.log.Debug("listening", "addr", ln.Multiaddr())
		h.wg.Add(1)
		go h.acceptLoop(ln)
	}
	h.wg.Add(1)
	go h.maintain()
	return h, nil
}

// ID returns the host's PeerID.
func (h *Host) ID() peer.ID { return h.id }

// Network returns the network name the host's protocols carry.
func (h *Host) Network() string { return h.network }

// Peerstore returns the host's address book.
func (h *Host) Peerstore() *Peerstore { return h.ps }

// ListenAddrs returns the bound listen addresses as they are, unspecified
// IPs (0.0.0.0, ::) included.
func (h *Host) ListenAddrs() []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(h.listeners))
	for _, l := range h.listeners {
		out = append(out, l.Multiaddr())
	}
	return out
}

// Addrs returns the addresses the host can be reached at: its listen
// addresses with actual ports, unspecified IPs expanded to the interface
// addresses, then those of AddAddrSource (relay addresses).
func (h *Host) Addrs() []ma.Multiaddr {
	return append(expandUnspecified(h.ListenAddrs()), h.extraAddrs()...)
}

// AddrInfo returns the host's ID and Addrs.
func (h *Host) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: h.id, Addrs: h.Addrs()}
}

// SetHandler registers the handler of a protocol, replacing any other.
func (h *Host) SetHandler(proto string, handler StreamHandler) {
	h.hmu.Lock()
	h.handlers[proto] = handler
	h.hmu.Unlock()
}

// RemoveHandler unregisters a protocol; peers proposing it get "na".
func (h *Host) RemoveHandler(proto string) {
	h.hmu.Lock()
	delete(h.handlers, proto)
	h.hmu.Unlock()
}

// Protocols returns the protocols the host serves, sorted.
func (h *Host) Protocols() []string {
	h.hmu.RLock()
	out := make([]string, 0, len(h.handlers))
	for p := range h.handlers {
		out = append(out, p)
	}
	h.hmu.RUnlock()
	sort.Strings(out)
	return out
}

func (h *Host) handler(proto string) StreamHandler {
	h.hmu.RLock()
	defer h.hmu.RUnlock()
	return h.handlers[proto]
}

// Close closes the listeners and every connection, waits for the host's
// goroutines (handlers included) and saves the peerstore.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	var conns []*Conn
	for _, cs := range h.conns {
		conns = append(conns, cs...)
	}
	h.mu.Unlock()
	h.cancel()
	for _, l := range h.listeners {
		l.Close()
	}
	for _, c := range conns {
		c.closeWithReason("host closing")
	}
	h.wg.Wait()
	h.mu.Lock()
	for s := range h.subs {
		s.close()
	}
	h.mu.Unlock()
	return h.ps.close()
}
