package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/bitswap"
	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/metrics"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/autonat"
	"github.com/share-p2p/share/p2p/dcutr"
	"github.com/share-p2p/share/p2p/mdns"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/p2p/pnet"
	"github.com/share-p2p/share/provide"
	"github.com/share-p2p/share/pubsub"
	"github.com/share-p2p/share/repo"
	"github.com/share-p2p/share/traffic"
)

// Network is a node's presence on the network: the host, the block
// exchange and LAN discovery, plus the bootstrap dialler.
type Network struct {
	Host     *p2p.Host
	Exchange *exchange.Exchange
	Bitswap  *bitswap.Bitswap  // nil unless Network is "ipfs"
	DHT      *dht.DHT          // nil when Routing.Mode is off; on network ipfs the WAN one
	LAN      *dht.DHT          // kubo's LAN DHT, on network ipfs only
	Routing  *dht.Dual         // DHT and LAN together; nil when Routing.Mode is off
	Provider *provide.Provider // nil when Routing.Mode is off
	// PubSub is gossipsub; nil when Pubsub.Enabled is off and on a
	// temporary node.
	PubSub *pubsub.PubSub
	// Traffic counts the blocks exchanged with each peer over either
	// protocol, with current rates and the node's throughput history.
	Traffic *traffic.Table
	// AutoNAT tells whether this node is reachable from the internet;
	// nil on a temporary node.
	AutoNAT       *autonat.Client
	autonatServer *autonat.Server
	dialer        *p2p.Host // AutoNAT's dial backs
	mdns          *mdns.Service
	relay         relayState
	holepunch     *dcutr.Service
	logger        *slog.Logger
	ctx           context.Context // lives until Close
	cancel        context.CancelFunc
	// bootstrapped is set once the DHT's routing table was filled.
	bootstrapped atomic.Bool

	// mu orders spawn's wg.Add before Close's wg.Wait: once closing is
	// set no goroutine starts.
	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
}

// NetworkOptions tune StartNetwork.
type NetworkOptions struct {
	Logger *slog.Logger
	// Transport opens raw connections (default TCP).
	Transport p2p.Transport
	// ListenAddrs override Addresses.Listen (a temporary node listens on
	// port 0 so it never collides with a daemon).
	ListenAddrs []string
	// MDNSLoopback also announces and browses on the loopback interface
	// (tests).
	MDNSLoopback bool
	// ExchangeConfig tunes the block exchange.
	ExchangeConfig exchange.Config
	// Temporary marks a node that only fetches and exits (the CLI without
	// a daemon): a DHT client that announces nothing, and neither relays
	// nor reserves on relays.
	Temporary bool
	// Public and Private override the node's reachability, for
	// Relay.Service and Relay.Client "auto" (tests); nil means AutoNAT's
	// answer (PubliclyReachable, PrivatelyReachable), and while AutoNAT
	// does not know, "auto" is off for both.
	Public, Private func() bool
}

// StartNetwork starts the host on the configured addresses, serves blocks,
// and finds peers on the LAN (mDNS) and from the bootstrap list. The node
// then fetches what it lacks from the network.
func (n *Node) StartNetwork(ctx context.Context, opts NetworkOptions) (*Network, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cfg := n.Repo.Config()
	hcfg, discoveryName, err := n.hostConfig(cfg, opts, logger)
	if err != nil {
		return nil, err
	}
	h, err := p2p.NewHost(ctx, hcfg)
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	nw := &Network{Host: h, Traffic: traffic.NewTable(), logger: logger, cancel: cancel, ctx: nctx}
	xcfg := nw.exchangeConfig(cfg, opts.ExchangeConfig, n.Metrics())
	var wire *bitswapWire
	if cfg.Network == ipfsNetwork {
		nw.Bitswap = bitswap.New(h.Streams(), nw.bitswapConfig(n, xcfg))
		wire = &bitswapWire{b: nw.Bitswap, h: h.Streams()}
		xcfg.Wire, xcfg.Speaks = wire, h.Streams().SupportsProtocol
	}
	ex, err := exchange.New(h.Streams(), h.Protocol("blocks"), n.Blocks, xcfg)
	if err != nil {
		cancel()
		if nw.Bitswap != nil {
			nw.Bitswap.Close()
		}
		h.Close()
		return nil, err
	}
	nw.Exchange = ex
	nw.startTraffic()
	if wire != nil {
		nw.Bitswap.SetReceiver(wire.receive(ex))
		nw.spawn(func() { wire.watchLost(nctx, h, ex) })
	}
	if !opts.Temporary {
		if err := nw.startAutoNAT(cfg, hcfg, n.Metrics()); err != nil {
			nw.Close()
			return nil, err
		}
	}
	// Before the DHT and bootstrap connect peers: pubsub learns of its
	// peers from identify as they come.
	if err := nw.startPubsub(n, opts.Temporary); err != nil {
		nw.Close()
		return nil, err
	}
	nw.startRelay(n, opts) // after AutoNAT: "auto" asks it
	nw.startHolePunch(n.Metrics())
	if err := nw.startDHT(nctx, n, opts); err != nil {
		nw.Close()
		return nil, err
	}
	if cfg.Discovery.MDNS {
		nw.startMDNS(discoveryName, mdnsFormat(cfg.Network), opts.MDNSLoopback)
	}
	nw.startBootstrap(cfg.Bootstrap)
	if !opts.Temporary && nw.Routing != nil {
		nw.startRepublisher(n)
	}
	n.net = nw
	return nw, nil
}

// hostConfig is the host's config from the node's: listen addresses,
// connection limits, identity, the address book, byte meters per
// protocol, and the private network's protector. It also returns the name
// LAN discovery announces the network under.
func (n *Node) hostConfig(cfg *repo.Config, opts NetworkOptions, logger *slog.Logger) (p2p.Config, string, error) {
	addrs := opts.ListenAddrs
	if addrs == nil {
		addrs = cfg.Addresses.Listen
	}
	listen, err := parseListen(addrs)
	if err != nil {
		return p2p.Config{}, "", err
	}
	protector, discoveryName, err := n.privateNetwork(cfg.Network)
	if err != nil {
		return p2p.Config{}, "", err
	}
	lim := cfg.Limits
	return p2p.Config{
		StreamMeter: streamMeter(n.Metrics()),
		Limits: p2p.Limits{
			MaxInbound: lim.ConnsInbound, MaxOutbound: lim.ConnsOutbound,
			MaxStreamsPerPeer: lim.StreamsPerPeer,
		},
		Protector:   protector,
		Key:         n.Repo.Identity.Key,
		ListenAddrs: listen,
		Network:     cfg.Network,
		Transport:   transport(opts.Transport),
		Logger:      logger,
		AddrStore:   n.Blocks.Keyspace('a'),
		IsNotFound:  func(err error) bool { return errs.Is(errs.NotFound, err) },
	}, discoveryName, nil
}

// parseListen parses the listen addresses of the config.
func parseListen(addrs []string) ([]ma.Multiaddr, error) {
	var listen []ma.Multiaddr
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("config Addresses.Listen %q: %w", s, err)
		}
		listen = append(listen, m)
	}
	return listen, nil
}

// privateNetwork loads the repository's swarm key, if any: a private
// network wraps every connection before anything else (the protector) and
// announces itself on the LAN under a name of its own. Without a key the
// protector is nil and the name is the network's.
func (n *Node) privateNetwork(network string) (p2p.Protector, string, error) {
	psk, err := repo.LoadSwarmKey(filepath.Join(n.Repo.Path, repo.SwarmKeyFile))
	if err != nil || psk == nil {
		return nil, network, err
	}
	return pnet.NewProtector(*psk), pnet.DiscoveryName(network, *psk), nil
}

// streamMeter counts the bytes of every stream in the metrics, by the
// protocol's short name.
func streamMeter(m *metrics.Node) func(proto string) (in, out func(int)) {
	return func(proto string) (in, out func(int)) {
		name := protocolName(proto)
		cin, cout := m.BytesIn(name), m.BytesOut(name)
		return func(n int) { cin.Add(uint64(n)) }, func(n int) { cout.Add(uint64(n)) }
	}
}

// exchangeConfig completes the exchange's config from the node's limits:
// the fields xcfg leaves zero take them; a peer that sends bad data is
// disconnected; served blocks are counted.
func (nw *Network) exchangeConfig(cfg *repo.Config, xcfg exchange.Config, m *metrics.Node) exchange.Config {
	lim := cfg.Limits
	xcfg.Logger = nw.logger
	xcfg.Traffic = nw.Traffic
	if xcfg.MaxRequests == 0 {
		xcfg.MaxRequests = lim.RequestsPerPeer
	}
	if xcfg.MaxBufferedBytes == 0 {
		xcfg.MaxBufferedBytes = lim.BufferedBytesPerPeer
	}
	if xcfg.MaxBlockSize == 0 {
		xcfg.MaxBlockSize = lim.MaxBlockBytes
	}
	if xcfg.MaxInFlightBytes == 0 {
		// Enough for line rate on a LAN (1 Gbit/s x 10 ms is 1.25 MB per
		// peer), small enough to keep the getter's memory in bounds.
		xcfg.MaxInFlightBytes = 32 << 20
	}
	xcfg.OnBadPeer = func(p peer.ID, err error) {
		nw.logger.Warn("disconnecting a peer that sent bad data", "peer", p, "err", err)
		nw.spawn(func() { nw.Host.ClosePeer(p) }) // OnBadPeer must not block
	}
	onServed := xcfg.OnServed
	xcfg.OnServed = func(n int) {
		m.BlocksServed.Inc()
		if onServed != nil {
			onServed(n)
		}
	}
	return xcfg
}

// bitswapConfig serves the blocks readers see (Local: background commits
// settle first) within the exchange's per-peer limits, disconnects peers
// that send bad messages and counts what it serves.
func (nw *Network) bitswapConfig(n *Node, xcfg exchange.Config) bitswap.Config {
	m := n.Metrics()
	return bitswap.Config{
		Store:            n.local(),
		MaxRequests:      xcfg.MaxRequests,
		MaxBufferedBytes: xcfg.MaxBufferedBytes,
		Logger:           nw.logger,
		OnBadPeer:        xcfg.OnBadPeer,
		Served:           func(blocks int, _ int64) { m.BlocksServed.Add(uint64(blocks)) },
		Traffic:          nw.Traffic,
		Serves:           xcfg.Serves,
	}
}

// mdnsFormat is the LAN announcement format of a network: on network
// ipfs libp2p's, which kubo speaks; on every other network share's own.
func mdnsFormat(network string) mdns.Format {
	if network == ipfsNetwork {
		return mdns.FormatLibp2p
	}
	return mdns.FormatShare
}

// ipfsNetwork is the network name whose protocols are kubo's.
const ipfsNetwork = "ipfs"

// startMDNS announces the node on the LAN under name and dials the peers
// it hears of. No multicast interface is not fatal: bootstrap and the DHT
// remain.
func (nw *Network) startMDNS(name string, format mdns.Format, loopback bool) {
	svc, err := mdns.New(mdns.Config{
		Network:         name,
		Format:          format,
		ID:              nw.Host.ID(),
		Addrs:           nw.Host.Addrs,
		IncludeLoopback: loopback,
		Logger:          nw.logger,
		OnPeer: func(id peer.ID, addrs []ma.Multiaddr) {
			nw.spawn(func() { nw.dialLAN(peer.AddrInfo{ID: id, Addrs: addrs}) })
		},
	})
	if err != nil {
		nw.logger.Warn("LAN discovery is off", "err", err)
		return
	}
	nw.mdns = svc
	svc.Start(nw.ctx)
}

// dialLAN connects to a peer mDNS found.
func (nw *Network) dialLAN(ai peer.AddrInfo) {
	ctx, cancel := context.WithTimeout(nw.ctx, 10*time.Second)
	defer cancel()
	if err := nw.Host.Connect(ctx, ai); err != nil {
		nw.logger.Debug("mdns peer: connect failed", "peer", ai.ID, "err", err)
	}
}

// startBootstrap keeps the node connected to each bootstrap peer and, with
// a DHT, fills its routing table from them.
func (nw *Network) startBootstrap(addrs []string) {
	for _, b := range addrs {
		ai, err := peer.AddrInfoFromString(b)
		if err != nil {
			nw.logger.Warn("bad bootstrap address", "addr", b, "err", err)
			continue
		}
		nw.spawn(func() { nw.keepConnected(nw.ctx, ai) })
	}
	if nw.Routing != nil && len(addrs) > 0 {
		nw.spawn(func() { nw.bootstrapDHT(nw.ctx, addrs) })
	}
}

// startDHT starts the Kademlia DHT and the provider (unless Routing.Mode
// is off); the provider records it serves live in keyspace 'P', the
// value records (IPNS) in 'V'. On network
// ipfs it starts kubo's two, WAN and LAN, over the one store.
func (nw *Network) startDHT(ctx context.Context, n *Node, opts NetworkOptions) error {
	cfg := n.Repo.Config()
	mode, err := dht.ParseMode(cfg.Routing.Mode)
	if err != nil {
		return fmt.Errorf("config Routing.Mode: %w", err)
	}
	if mode == dht.ModeOff {
		return nil
	}
	if opts.Temporary {
		mode = dht.ModeClient
	}
	store, err := provide.NewStore(provide.StoreConfig{KV: n.Blocks.Keyspace('P'), MaxPerPeer: cfg.Limits.DHTRecordsPerPeer})
	if err != nil {
		return err
	}
	nw.spawn(func() { store.RunExpiry(ctx, time.Hour) })
	nw.spawn(func() { n.values.RunExpiry(ctx, time.Hour) })
	scope := dht.ScopeAll
	if cfg.Network == ipfsNetwork {
		scope = dht.ScopeWAN
	}
	nw.DHT, err = nw.newDHT(n, dht.Protocol(cfg.Network), scope, mode, store)
	if err != nil {
		return err
	}
	nw.Routing = &dht.Dual{WAN: nw.DHT}
	if cfg.Network == ipfsNetwork {
		// kubo's LAN DHT serves unless its WAN one is a client by
		// configuration; auto resolves on the node's own addresses.
		nw.LAN, err = nw.newDHT(n, dht.LANProtocol(cfg.Network), dht.ScopeLAN, mode, store)
		if err != nil {
			nw.DHT.Close()
			return err
		}
		nw.Routing.LAN = nw.LAN
	}
	return nw.startProvider(ctx, n, opts.Temporary)
}

// newDHT starts one DHT on proto and feeds it the peers identify finds
// serving proto.
func (nw *Network) newDHT(n *Node, proto string, scope dht.Scope, mode dht.Mode, store *provide.Store) (*dht.DHT, error) {
	cfg := n.Repo.Config()
	hostNet := dht.NewHostNetwork(nw.Host.Streams(), proto)
	hostNet.MaxMessageSize = cfg.Limits.MaxDHTMessageBytes
	d, err := dht.New(dht.Config{
		Self:      nw.Host.AddrInfo,
		Mode:      mode,
		Scope:     scope,
		Alpha:     cfg.Routing.Alpha,
		Transport: countedDHT{hostNet, n.Metrics()},
		Store:     store,
		Values:    n.values,
		Logger:    nw.logger,
	})
	if err != nil {
		return nil, err
	}
	d.Attach(nw.Host.Streams(), proto)
	return d, nil
}

// startProvider starts the provider over the DHT: it announces what
// Provide.Strategy says, and a node that is not temporary re-announces it
// every 22 h, sweeping the key space region by region (its position in
// keyspace 'S').
func (nw *Network) startProvider(ctx context.Context, n *Node, temporary bool) error {
	strategy, err := provide.ParseStrategy(n.Repo.Config().Provide.Strategy)
	if err != nil {
		return fmt.Errorf("config Provide.Strategy: %w", err)
	}
	pcfg := provide.Config{Router: nw.Routing, Strategy: strategy, Logger: nw.logger}
	if !temporary {
		pcfg.Keys = func(ctx context.Context, fn func([]byte) error) error { return n.provideKeys(ctx, strategy, fn) }
		// Where the reprovide sweep is, so a restart goes on from there.
		pcfg.State = n.Blocks.Keyspace('S')
	}
	p, err := provide.New(pcfg)
	if err != nil {
		return err
	}
	nw.Provider = p
	if !temporary {
		nw.spawn(func() { p.Run(ctx) })
	}
	return nil
}

// bootstrapDHT fills the routing table from the bootstrap peers once some
// are connected, retrying with backoff until it works.
func (nw *Network) bootstrapDHT(ctx context.Context, addrs []string) {
	var seeds []peer.AddrInfo
	for _, a := range addrs {
		if ai, err := peer.AddrInfoFromString(a); err == nil {
			seeds = append(seeds, ai)
		}
	}
	backoff := 200 * time.Millisecond
	for {
		err := nw.Routing.Bootstrap(ctx, seeds)
		if err == nil {
			nw.bootstrapped.Store(true)
			return
		}
		nw.logger.Debug("DHT bootstrap", "err", err, "retry", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

// keepConnected dials a bootstrap peer and redials it with backoff
// whenever the connection is gone.
func (nw *Network) keepConnected(ctx context.Context, ai peer.AddrInfo) {
	backoff := time.Second
	for {
		if !nw.Host.Connected(ai.ID) {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := nw.Host.Connect(dctx, ai)
			cancel()
			if err != nil {
				nw.logger.Debug("bootstrap dial failed", "peer", ai.ID, "err", err, "retry", backoff)
				backoff = min(backoff*2, 5*time.Minute)
			} else {
				backoff = time.Second
				nw.Host.Protect(ai.ID, "bootstrap")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// spawn runs f in a goroutine that Close waits for, unless Close has
// begun: then f does not run. Every goroutine of the network starts here,
// so none starts after Close waited for them.
func (nw *Network) spawn(f func()) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.closing {
		return
	}
	nw.wg.Add(1)
	go func() {
		defer nw.wg.Done()
		f()
	}()
}

// Close stops discovery, the DHT, the exchange and the host.
func (nw *Network) Close() error {
	nw.mu.Lock()
	nw.closing = true
	nw.mu.Unlock()
	nw.cancel()
	if nw.mdns != nil {
		nw.mdns.Close()
	}
	if nw.Routing != nil {
		nw.Routing.Close()
	}
	nw.stopRelay()
	nw.holepunch.Close()
	nw.closeAutoNAT()
	if nw.PubSub != nil {
		nw.PubSub.Close()
	}
	nw.Exchange.Close()
	if nw.Bitswap != nil {
		nw.Bitswap.Close()
	}
	err := nw.Host.Close()
	nw.wg.Wait()
	return err
}

// countedDHT counts the DHT requests this node sends, by type.
type countedDHT struct {
	*dht.HostNetwork
	m *metrics.Node
}

func (c countedDHT) Send(ctx context.Context, to peer.AddrInfo, req *dht.Message) (*dht.Message, error) {
	c.m.DHTRequests.With(req.Type.String()).Inc()
	return c.HostNetwork.Send(ctx, to, req)
}

// SendBatch implements dht.Batcher, counting every message of the
// stream.
func (c countedDHT) SendBatch(ctx context.Context, to peer.AddrInfo, msgs []*dht.Message) error {
	for _, m := range msgs {
		c.m.DHTRequests.With(m.Type.String()).Inc()
	}
	return c.HostNetwork.SendBatch(ctx, to, msgs)
}

// Announce tells the DHT that this node provides root (and, with the
// "all" strategy, blocks). It runs in the background.
func (nw *Network) Announce(root cid.Cid, blocks []cid.Cid) {
	if nw.Provider == nil {
		return
	}
	nw.spawn(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := nw.Provider.Announce(ctx, root, blocks); err != nil {
			nw.logger.Debug("announce", "cid", root, "err", err)
		}
	})
}

// protocolName turns a protocol ID ("/share/blocks/1.0.0") into the short
// name metrics use ("blocks").
func protocolName(proto string) string {
	parts := strings.Split(proto, "/")
	if len(parts) >= 4 {
		return parts[2]
	}
	return "other"
}

// EphemeralAddrs returns addrs with every TCP port set to 0, for a
// temporary node that must not collide with a daemon.
func EphemeralAddrs(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		var b ma.Multiaddr
		ok := true
		ma.ForEach(m, func(c ma.Component) bool {
			if c.Protocol().Code == ma.P_TCP {
				zero, err := ma.NewComponent("tcp", "0")
				if err != nil {
					ok = false
					return false
				}
				b = append(b, *zero)
				return true
			}
			b = append(b, c)
			return true
		})
		if ok {
			out = append(out, b.String())
		}
	}
	return out
}
