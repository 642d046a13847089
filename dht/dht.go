package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
)

// Mode says whether a node serves the DHT.
type Mode int

// The modes (Routing.Mode in the config).
const (
	// ModeAuto serves when the node has sane listen addresses and is a
	// client when it only dials.
	ModeAuto Mode = iota
	// ModeServer answers requests and may enter others' routing tables.
	ModeServer
	// ModeClient only queries: it registers no handler, so identify does
	// not list the kad protocol and no server adds it to its table.
	ModeClient
	// ModeOff disables the DHT: lookups fail with ErrOff.
	ModeOff
)

// ParseMode parses "auto", "server", "client" or "off".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto", "":
		return ModeAuto, nil
	case "server":
		return ModeServer, nil
	case "client":
		return ModeClient, nil
	case "off":
		return ModeOff, nil
	}
	return 0, fmt.Errorf("routing mode %q: want auto, server, client or off", s)
}

func (m Mode) String() string {
	return [...]string{"auto", "server", "client", "off"}[m]
}

// ProviderStore keeps the provider records a server receives
// (provide.Store implements it).
type ProviderStore interface {
	// AddProvider records that prov provides key.
	AddProvider(key []byte, prov peer.AddrInfo) error
	// Providers returns up to max providers of key.
	Providers(key []byte, max int) []peer.AddrInfo
}

// Config configures a DHT. Self, Transport and (unless Mode is client or
// off) Store are required; the zero value of every other field selects
// its documented default.
type Config struct {
	// Self returns the node's ID and the addresses it is reachable at;
	// provider records carry these addresses.
	Self func() peer.AddrInfo
	// Mode is auto by default.
	Mode Mode
	// K is the bucket size and replication factor (default 20).
	K int
	// Alpha is the number of queries a lookup keeps in flight
	// (default 10, as libp2p's kad-dht).
	Alpha int
	// Transport carries the messages; it is bound to the protocol ID
	// (Protocol(network)), so DHTs of different networks never meet.
	Transport Network
	// Store keeps the provider records this node serves.
	Store ProviderStore
	// Scope says which peers and addresses the DHT deals in (default
	// ScopeAll; a node on network ipfs runs a ScopeWAN and a ScopeLAN one).
	Scope Scope
	// Logger receives debug events (default: discarded).
	Logger *slog.Logger
	// QueryTimeout bounds one request (default 10 s).
	QueryTimeout time.Duration
	// MaxFailures is the number of failed requests in a row after which a
	// peer leaves the routing table (default 2).
	MaxFailures int
	// RefreshInterval is the period of the maintenance loop that checks
	// stale peers and refreshes buckets (default 10 min; negative: off).
	RefreshInterval time.Duration
	// MaxProviders bounds the provider records of one key in an answer
	// (default 2K).
	MaxProviders int
	// ProvideConcurrency bounds the ADD_PROVIDER streams in flight during
	// Provide (default 128; each carries up to 512 keys to one peer, so
	// 10 000 keys, 200 000 messages, take a few round trips).
	ProvideConcurrency int
	// OnLookup, if set, is called after every lookup with its figures.
	OnLookup func(LookupStats)
	// Values keeps the value records (PUT_VALUE, GET_VALUE) and checks
	// them; without it they are neither served nor looked up. A node's
	// DHTs share one.
	Values *ValueStore
	// ValueQuorum is the number of valid records after which GetValue
	// stops asking (default 16, kad-dht's and kubo's).
	ValueQuorum int
	// OnRepair, if set, is called when GetValue's repair of stale peers
	// ended, with the number of peers that took the best record.
	OnRepair func(key []byte, peers int)
}

// Errors returned by the DHT.
var (
	ErrOff      = errors.New("DHT is off")
	ErrNoPeers  = errors.New("no DHT peers")
	ErrNotFound = errors.New("not found")
	ErrClosed   = errors.New("DHT closed")
)

// DHT is a Kademlia node. Its methods are safe for concurrent use.
type DHT struct {
	cfg    Config
	self   peer.ID
	key    Key
	mode   Mode
	log    *slog.Logger
	rt     *table
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New starts a DHT node: in server mode it answers requests on
// cfg.Transport at once. Close stops it.
func New(cfg Config) (*DHT, error) {
	if cfg.Self == nil {
		return nil, errors.New("dht config: Self is required")
	}
	self := cfg.Self()
	if err := self.ID.Validate(); err != nil {
		return nil, fmt.Errorf("dht config: Self: %w", err)
	}
	if cfg.Scope < ScopeAll || cfg.Scope > ScopeLAN {
		return nil, fmt.Errorf("dht config: Scope %d unknown", cfg.Scope)
	}
	if cfg.Mode < ModeAuto || cfg.Mode > ModeOff {
		return nil, fmt.Errorf("dht config: Mode %d unknown", cfg.Mode)
	}
	if cfg.Transport == nil && cfg.Mode != ModeOff {
		return nil, errors.New("dht config: Transport is required")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.K, 20)
	def(&cfg.Alpha, 10)
	def(&cfg.MaxFailures, 2)
	def(&cfg.MaxProviders, 2*cfg.K)
	def(&cfg.ProvideConcurrency, 128)
	def(&cfg.ValueQuorum, 16)
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 10 * time.Second
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mode := cfg.Mode
	if mode == ModeAuto {
		mode = ModeClient
		if len(cfg.Scope.Filter(self.Addrs)) > 0 {
			mode = ModeServer
		}
	}
	if mode == ModeServer && cfg.Store == nil {
		return nil, errors.New("dht config: Store is required in server mode")
	}
	d := &DHT{
		cfg:  cfg,
		self: self.ID,
		key:  KeyOf([]byte(self.ID)),
		mode: mode,
		log:  cfg.Logger.With("dht", mode.String(), "scope", cfg.Scope.String()),
	}
	d.rt = newTable(d.key, cfg.K, cfg.MaxFailures, time.Now)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if mode == ModeServer {
		cfg.Transport.Serve(d.handle)
	}
	if mode != ModeOff && cfg.RefreshInterval > 0 {
		d.wg.Add(1)
		go d.maintain()
	}
	return d, nil
}

// Mode returns the mode the node runs in: server, client or off (auto is
// resolved at New).
func (d *DHT) Mode() Mode { return d.mode }

// Self returns the node's ID.
func (d *DHT) Self() peer.ID { return d.self }

// Alpha is the number of requests a lookup keeps in flight.
func (d *DHT) Alpha() int { return d.cfg.Alpha }

// RoutingTableSize returns the number of peers in the routing table.
func (d *DHT) RoutingTableSize() int { return d.rt.size() }

// Close stops serving and waits for the maintenance loop.
func (d *DHT) Close() error {
	if d.mode == ModeServer {
		d.cfg.Transport.Serve(nil)
	}
	d.cancel()
	d.wg.Wait()
	return nil
}

// AddPeer puts a peer known to serve the DHT into the routing table (e.g.
// one that identify says speaks kad). It reports whether it is in the
// live table.
func (d *DHT) AddPeer(ai peer.AddrInfo) bool {
	return d.see(ai)
}

// see records in the table a peer known to serve, if the scope admits it
// with the addresses it keeps of it.
func (d *DHT) see(ai peer.AddrInfo) bool {
	ai.Addrs = d.cfg.Scope.Filter(ai.Addrs)
	if !d.cfg.Scope.Admits(ai.Addrs) {
		return false
	}
	return d.rt.seen(ai)
}

// Attach feeds h's identified peers that serve proto into the routing
// table, until Close. Use it with a HostNetwork on the same host.
func (d *DHT) Attach(h share.RoutingHost, proto string) {
	if d.mode == ModeOff {
		return
	}
	stop := h.WatchProtocol(proto, func(ai peer.AddrInfo) { d.AddPeer(ai) })
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		<-d.ctx.Done()
		stop()
	}()
}

// query sends one request, records the outcome in the routing table and
// checks the answer's type.
func (d *DHT) query(ctx context.Context, to peer.AddrInfo, req *Message) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.QueryTimeout)
	defer cancel()
	resp, err := d.cfg.Transport.Send(ctx, to, req)
	if err == nil && resp.Type != req.Type {
		err = fmt.Errorf("%w: %s answered %s to %s", ErrBadMessage, to.ID, resp.Type, req.Type)
	}
	if err != nil {
		d.noted(ctx, to, err)
		return nil, err
	}
	d.see(to)
	return resp, nil
}

// noted records in the routing table that a request to a peer failed
// with err, within ctx.
func (d *DHT) noted(ctx context.Context, to peer.AddrInfo, err error) {
	switch {
	case errors.Is(err, ErrBadMessage):
		// An answer that does not decode, or of the wrong type, is
		// no accident: the peer leaves the table at once.
		d.rt.remove(to.ID)
		d.log.Debug("dropping a peer that answered garbage", "peer", to.ID, "err", err)
	case d.ctx.Err() == nil && ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded):
		// A lookup that ended cancels its queries: those are no
		// failures of the peer.
		d.rt.failed(to.ID)
	}
}

// sendBatch delivers the one-way msgs to a peer, on one stream when the
// transport is a Batcher, else one request each, and records the outcome
// in the routing table as query does. It reports whether all arrived.
func (d *DHT) sendBatch(ctx context.Context, to peer.AddrInfo, msgs []*Message) bool {
	b, ok := d.cfg.Transport.(Batcher)
	if !ok {
		all := true
		for _, m := range msgs {
			if _, err := d.query(ctx, to, m); err != nil {
				all = false
			}
		}
		return all
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.QueryTimeout+time.Duration(len(msgs))*10*time.Millisecond)
	defer cancel()
	err := b.SendBatch(ctx, to, msgs)
	if err != nil {
		d.noted(ctx, to, err)
		return false
	}
	d.see(to)
	return true
}

// Ping checks that a peer answers.
func (d *DHT) Ping(ctx context.Context, ai peer.AddrInfo) error {
	if d.mode == ModeOff {
		return ErrOff
	}
	_, err := d.query(ctx, ai, &Message{Type: Ping})
	return err
}

// Bootstrap looks this node up, starting from the given peers and the
// routing table: the peers that answer fill the table. It fails if no DHT server
// answered.
func (d *DHT) Bootstrap(ctx context.Context, peers []peer.AddrInfo) error {
	if d.mode == ModeOff {
		return ErrOff
	}
	var seeds []peer.AddrInfo
	for _, p := range peers {
		if p.ID != d.self {
			seeds = append(seeds, p)
		}
	}
	if _, err := d.lookupWith(ctx, FindNode, []byte(d.self), d.cfg.K, seeds, nil); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if d.rt.size() == 0 {
		return fmt.Errorf("bootstrap: %w", ErrNoPeers)
	}
	return nil
}

// Refresh checks the liveness of peers not heard from in an interval,
// looks the node itself up, and refreshes the buckets with random lookups.
func (d *DHT) Refresh(ctx context.Context) error {
	if d.mode == ModeOff {
		return ErrOff
	}
	if iv := d.cfg.RefreshInterval; iv > 0 {
		var wg sync.WaitGroup
		sem := make(chan struct{}, d.cfg.Alpha)
		for _, p := range d.rt.stale(time.Now().Add(-iv)) {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				d.Ping(ctx, p)
			}()
		}
		wg.Wait()
	}
	if _, err := d.lookup(ctx, FindNode, []byte(d.self), d.cfg.K, nil); err != nil {
		return err
	}
	top := min(d.rt.fullestBucket(), 15)
	for cpl := 0; cpl < top; cpl++ {
		if _, err := d.lookup(ctx, FindNode, randomKeyAt(d.key, cpl), d.cfg.K, nil); err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (d *DHT) maintain() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			if err := d.Refresh(d.ctx); err != nil {
				d.log.Debug("refresh", "err", err)
			}
		}
	}
}

// FindPeer returns the addresses of a peer: from the routing table, or by
// a lookup that ends as soon as a peer lists it.
func (d *DHT) FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	if d.mode == ModeOff {
		return peer.AddrInfo{}, ErrOff
	}
	if ai, ok := d.rt.find(id); ok {
		return ai, nil
	}
	var found peer.AddrInfo
	_, err := d.lookup(ctx, FindNode, []byte(id), d.cfg.K, func(from peer.AddrInfo, m *Message) bool {
		if from.ID == id {
			found = from
			return true
		}
		for _, p := range m.CloserPeers {
			if p.ID == id {
				if addrs := d.cfg.Scope.Filter(p.Addrs); len(addrs) > 0 {
					found = peer.AddrInfo{ID: id, Addrs: addrs}
					return true
				}
			}
		}
		return false
	})
	if found.ID != "" {
		return found, nil
	}
	if err != nil {
		return peer.AddrInfo{}, err
	}
	return peer.AddrInfo{}, fmt.Errorf("find peer %s: %w", id, ErrNotFound)
}

// FindProviders streams the providers of key (a multihash) as they are
// found: this node's own records first, then those of the lookup. The
// channel closes when the lookup ends, max providers were sent (max <= 0:
// no limit), or ctx ends; the caller must drain it or cancel ctx.
func (d *DHT) FindProviders(ctx context.Context, key []byte, max int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, 16)
	go func() {
		defer close(out)
		if d.mode == ModeOff || !ValidKey(key) {
			return
		}
		sent := map[peer.ID]bool{}
		emit := func(ai peer.AddrInfo) bool {
			if sent[ai.ID] {
				return false
			}
			sent[ai.ID] = true
			select {
			case out <- ai:
			case <-ctx.Done():
				return true
			}
			return max > 0 && len(sent) >= max
		}
		if d.cfg.Store != nil {
			for _, ai := range d.cfg.Store.Providers(key, d.cfg.MaxProviders) {
				if emit(ai) {
					return
				}
			}
		}
		d.lookup(ctx, GetProviders, key, d.cfg.K, func(_ peer.AddrInfo, m *Message) bool {
			for _, p := range m.ProviderPeers {
				if emit(peer.AddrInfo{ID: p.ID, Addrs: d.cfg.Scope.Filter(p.Addrs)}) {
					return true
				}
			}
			return ctx.Err() != nil
		})
	}()
	return out
}

// FindPeerLocal returns the routing table's record of a peer, or
// ErrNotFound.
func (d *DHT) FindPeerLocal(id peer.ID) (peer.AddrInfo, error) {
	if ai, ok := d.rt.find(id); ok {
		return ai, nil
	}
	return peer.AddrInfo{}, ErrNotFound
}
