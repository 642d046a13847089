package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	pion "github.com/pion/mdns/v2"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/share-p2p/share/p2p/peer"
)

// Defaults of Config.
const (
	DefaultQueryInterval    = time.Second
	DefaultMaxQueryInterval = time.Minute
)

// How long a peer that announces nothing new stays quiet before it is
// reported again, so that a consumer that forgot it hears of it anew.
const reReport = 10 * time.Minute

var (
	// ErrNoInterfaces is returned by New when no interface can carry mDNS.
	ErrNoInterfaces = errors.New("mdns: no multicast-capable interface")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("mdns: service closed")
)

// Format is a record format: how a Service announces itself and reads
// the announcements of others.
type Format int

const (
	// FormatShare is share's own: a service type per network, the network
	// in the TXT record, the PeerID as instance name (see the package doc).
	FormatShare Format = iota
	// FormatLibp2p is libp2p's (libp2p/specs discovery/mdns.md), which
	// kubo speaks: service _p2p._udp, random instance names, one TXT
	// string "dnsaddr=/ip4/.../tcp/N/p2p/ID" per address. It carries no
	// network name: use it for network "ipfs".
	FormatLibp2p
)

// Config configures a Service. Network, ID, Addrs and OnPeer are required.
type Config struct {
	// Network is the network name; peers of other networks are ignored.
	// FormatLibp2p announces no network name, so it is only checked.
	Network string
	// Format is the record format (default FormatShare).
	Format Format
	// ID is this node's PeerID.
	ID peer.ID
	// Addrs returns the node's listen addresses. It is called when the
	// service starts and before each query, from one goroutine.
	Addrs func() []ma.Multiaddr
	// Interfaces are the interfaces to announce and query on. Nil means
	// every interface that is up and has the MULTICAST flag.
	Interfaces []net.Interface
	// IncludeLoopback lets the loopback interface be used (when nil
	// Interfaces are picked) and loopback addresses be accepted: for tests.
	IncludeLoopback bool
	// OnPeer is called, from one goroutine at a time, for each peer found
	// (never this node) with its transport addresses (without /p2p): on first
	// sight, when it announces new addresses, and again after 10 minutes.
	OnPeer func(id peer.ID, addrs []ma.Multiaddr)
	// QueryInterval is the delay before the second query; it doubles after
	// each query up to MaxQueryInterval. Defaults: 1 s and 60 s.
	QueryInterval    time.Duration
	MaxQueryInterval time.Duration
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

var networkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

func (c *Config) validate() error {
	switch {
	case !networkName.MatchString(c.Network):
		return fmt.Errorf("mdns: config Network %q: want 1-64 letters, digits, '.', '_' or '-'", c.Network)
	case c.ID.Validate() != nil:
		return fmt.Errorf("mdns: config ID: %w", c.ID.Validate())
	case c.Addrs == nil:
		return errors.New("mdns: config Addrs is nil")
	case c.OnPeer == nil:
		return errors.New("mdns: config OnPeer is nil")
	case c.Format != FormatShare && c.Format != FormatLibp2p:
		return fmt.Errorf("mdns: config Format %d unknown", c.Format)
	case c.QueryInterval < 0 || c.MaxQueryInterval < 0:
		return errors.New("mdns: config QueryInterval: negative")
	}
	if c.QueryInterval == 0 {
		c.QueryInterval = DefaultQueryInterval
	}
	if c.MaxQueryInterval == 0 {
		c.MaxQueryInterval = DefaultMaxQueryInterval
	}
	c.MaxQueryInterval = max(c.MaxQueryInterval, c.QueryInterval)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// A Service announces this node on the LAN and reports the peers it finds.
type Service struct {
	cfg     Config
	svcType string
	conn    *pion.Conn  // FormatShare
	lp      *libp2pConn // FormatLibp2p
	events  chan pion.ServiceEvent
	lpPeers chan libp2pPeer

	mu      sync.Mutex
	started bool
	closed  bool
	rec     record // what is registered; only the query loop changes it
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// seen, a test hook set before Start, is called by deliverLoop after
	// it handled an answer of another peer, reported or not: the only
	// sign that a repeated answer was heard and left unreported.
	seen func(peer.ID)
}

// New opens the mDNS sockets on the chosen interfaces and starts answering
// questions for this node. Call Start to look for peers.
func New(cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ifaces, err := pickInterfaces(cfg.Interfaces, cfg.IncludeLoopback)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:     cfg,
		svcType: serviceType(cfg.Network),
		events:  make(chan pion.ServiceEvent, 128),
		lpPeers: make(chan libp2pPeer, 128),
	}
	if cfg.Format == FormatLibp2p {
		return s, s.newLibp2p(ifaces)
	}
	s.rec = makeRecord(cfg.Network, cfg.ID, cfg.Addrs())

	pc4, pc6, err := listen()
	if err != nil {
		return nil, err
	}
	conn, err := pion.NewServer(pc4, pc6,
		pion.WithName("share"),
		pion.WithLoggerFactory(loggerFactory{cfg.Logger}),
		pion.WithInterfaces(ifaces...),
		pion.WithIncludeLoopback(cfg.IncludeLoopback),
		pion.WithLocalNames(hostName(cfg.ID)),
		pion.WithService(s.rec.instance(cfg.Network, cfg.ID)),
		// Each browse session sends one query; queryLoop paces them.
		pion.WithQueryInterval(24*time.Hour),
		pion.WithCacheRefresh(false),
	)
	if err != nil {
		closeConns(pc4, pc6)
		return nil, fmt.Errorf("mdns: %w", err)
	}
	s.conn = conn
	conn.OnServiceDiscovered(s.found)
	return s, nil
}

// newLibp2p opens the sockets of the libp2p format.
func (s *Service) newLibp2p(ifaces []net.Interface) error {
	addrs := s.cfg.Addrs()
	s.rec = record{port: firstPort(addrs, s.cfg.ID), libp2p: libp2pTXT(s.cfg.ID, addrs)}
	ann := &libp2pAnnouncement{instance: randomLabel(), host: randomLabel(), port: s.rec.port, txt: s.rec.libp2p}
	lp, err := newLibp2pConn(ifaces, s.cfg.IncludeLoopback, ann, func(p libp2pPeer) {
		select {
		case s.lpPeers <- p:
		default:
			s.cfg.Logger.Debug("mdns: OnPeer is behind, event dropped", "peer", p.id)
		}
	})
	if err != nil {
		return fmt.Errorf("mdns: %w", err)
	}
	s.lp = lp
	return nil
}

// pickInterfaces returns ifaces, or when nil every interface that is up and
// multicast-capable (loopback only if includeLoopback).
func pickInterfaces(ifaces []net.Interface, includeLoopback bool) ([]net.Interface, error) {
	if ifaces == nil {
		all, err := net.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("mdns: %w", err)
		}
		for _, ifc := range all {
			want := net.FlagUp | net.FlagMulticast
			if ifc.Flags&want == want && (includeLoopback || ifc.Flags&net.FlagLoopback == 0) {
				ifaces = append(ifaces, ifc)
			}
		}
	}
	if len(ifaces) == 0 {
		return nil, ErrNoInterfaces
	}
	return ifaces, nil
}

// listen opens the multicast sockets on port 5353. Go binds a multicast
// address as the wildcard address with SO_REUSEADDR, so several services
// (and other responders) share the port. One family may be missing.
func listen() (*ipv4.PacketConn, *ipv6.PacketConn, error) {
	var pc4 *ipv4.PacketConn
	var pc6 *ipv6.PacketConn
	l4, err4 := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
	if err4 == nil {
		pc4 = ipv4.NewPacketConn(l4)
	}
	l6, err6 := net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353})
	if err6 == nil {
		pc6 = ipv6.NewPacketConn(l6)
	}
	if pc4 == nil && pc6 == nil {
		return nil, nil, fmt.Errorf("mdns: listen: %w", errors.Join(err4, err6))
	}
	return pc4, pc6, nil
}

func closeConns(pc4 *ipv4.PacketConn, pc6 *ipv6.PacketConn) {
	if pc4 != nil {
		pc4.Close()
	}
	if pc6 != nil {
		pc6.Close()
	}
}

// Start sends the first query at once and then queries with backoff until
// ctx ends or the service is closed. Answering continues until Close.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.started:
		return errors.New("mdns: service already started")
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.queryLoop(ctx) }()
	go func() { defer s.wg.Done(); s.deliverLoop(ctx) }()
	return nil
}

// Close stops querying and answering and waits for the service's
// goroutines. It is safe to call more than once.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.lp != nil {
		s.lp.close()
		return nil
	}
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("mdns: close: %w", err)
	}
	return nil
}

// queryLoop runs one browse session per query: a session sends its PTR
// question at once and collects answers until the next one replaces it, so
// that answers are heard at all times while each session's state (which pion
// does not bound) lives at most MaxQueryInterval.
func (s *Service) queryLoop(ctx context.Context) {
	interval := s.cfg.QueryInterval
	timer := time.NewTimer(0)
	defer timer.Stop()
	stopPrev := func() {}
	defer func() { stopPrev() }()
	for {
		s.refresh()
		if s.lp != nil {
			s.lp.query()
		} else {
			bctx, stop := context.WithCancel(ctx)
			if err := s.conn.Browse(bctx, s.svcType); err != nil {
				s.cfg.Logger.Debug("mdns browse", "err", err)
			}
			stopPrev()
			stopPrev = stop
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		interval = min(2*interval, s.cfg.MaxQueryInterval)
	}
}

// refresh re-registers this node's record when its addresses changed.
func (s *Service) refresh() {
	if s.lp != nil {
		s.refreshLibp2p()
		return
	}
	rec := makeRecord(s.cfg.Network, s.cfg.ID, s.cfg.Addrs())
	if rec.equal(s.rec) {
		return
	}
	var err error
	if rec.port == s.rec.port {
		err = s.conn.UpdateTXT(s.cfg.ID.String(), s.svcType, rec.text)
	} else {
		s.conn.Unregister(s.cfg.ID.String(), s.svcType)
		err = s.conn.Register(rec.instance(s.cfg.Network, s.cfg.ID))
	}
	if err != nil {
		s.cfg.Logger.Debug("mdns update record", "err", err)
		return
	}
	s.rec = rec
}

// refreshLibp2p replaces the libp2p announcement when the addresses
// changed; the instance name stays.
func (s *Service) refreshLibp2p() {
	addrs := s.cfg.Addrs()
	rec := record{port: firstPort(addrs, s.cfg.ID), libp2p: libp2pTXT(s.cfg.ID, addrs)}
	if rec.port == s.rec.port && slices.Equal(rec.libp2p, s.rec.libp2p) {
		return
	}
	old := s.lp.ann.Load()
	s.lp.setAnnouncement(&libp2pAnnouncement{instance: old.instance, host: old.host, port: rec.port, txt: rec.libp2p})
	s.rec = rec
}

// found is called by pion's read loops; it must not block them.
func (s *Service) found(ev pion.ServiceEvent) {
	select {
	case s.events <- ev:
	default:
		s.cfg.Logger.Debug("mdns: OnPeer is behind, event dropped", "instance", ev.Instance.Instance)
	}
}

type seen struct {
	addrs    []ma.Multiaddr
	reported time.Time
}

// deliverLoop validates and deduplicates events and calls OnPeer.
func (s *Service) deliverLoop(ctx context.Context) {
	peers := make(map[peer.ID]*seen)
	for {
		var id peer.ID
		var addrs []ma.Multiaddr
		select {
		case <-ctx.Done():
			return
		case p := <-s.lpPeers:
			id, addrs = p.id, p.addrs
		case ev := <-s.events:
			var err error
			id, addrs, err = parseEvent(s.cfg.Network, ev, s.cfg.IncludeLoopback)
			if err != nil {
				s.cfg.Logger.Debug("mdns: ignored instance", "instance", ev.Instance.Instance, "err", err)
				continue
			}
		}
		if id == s.cfg.ID {
			continue
		}
		if all, ok := remember(peers, id, addrs, time.Now()); ok {
			s.cfg.Logger.Debug("mdns: peer found", "peer", id, "addrs", all)
			s.cfg.OnPeer(id, all)
		}
		if s.seen != nil {
			s.seen(id)
		}
	}
}

// remember merges addrs into what is known of id and says whether to report
// the peer, with all its known addresses.
func remember(peers map[peer.ID]*seen, id peer.ID, addrs []ma.Multiaddr, now time.Time) ([]ma.Multiaddr, bool) {
	p := peers[id]
	if p == nil {
		if len(peers) >= maxPeers {
			evictOldest(peers)
		}
		p = &seen{}
		peers[id] = p
	}
	changed := p.reported.IsZero() || now.Sub(p.reported) >= reReport
	for _, a := range addrs {
		if !containsAddr(p.addrs, a) {
			changed = true
			if len(p.addrs) == maxAddrsPerPeer {
				p.addrs = p.addrs[1:]
			}
			p.addrs = append(p.addrs, a)
		}
	}
	if !changed {
		return nil, false
	}
	p.reported = now
	return append([]ma.Multiaddr(nil), p.addrs...), true
}

func containsAddr(list []ma.Multiaddr, a ma.Multiaddr) bool {
	for _, b := range list {
		if a.Equal(b) {
			return true
		}
	}
	return false
}

func evictOldest(peers map[peer.ID]*seen) {
	var oldest peer.ID
	var t time.Time
	for id, p := range peers {
		if oldest == "" || p.reported.Before(t) {
			oldest, t = id, p.reported
		}
	}
	delete(peers, oldest)
}
