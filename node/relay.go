package node

import (
	"sync"
	"time"

	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/p2p/relay"
	"github.com/share-p2p/share/repo"
)

// relayState is the node's circuit relay: the client (always attached,
// so /p2p-circuit addresses can be dialled) and the service while it runs.
type relayState struct {
	client *relay.Client
	mu     sync.Mutex
	svc    *relay.Service
}

// serviceCheck is how often Relay.Service "auto" looks at reachability.
const serviceCheck = time.Minute

// startRelay attaches the relay client, keeps reservations as
// Relay.Client says and runs the service as Relay.Service says. A
// temporary node only dials through relays.
func (nw *Network) startRelay(n *Node, opts NetworkOptions) {
	cfg := n.Repo.Config()
	nw.relay.client = relay.NewClient(nw.Host, nw.logger)
	if opts.Temporary {
		return
	}
	if mode := cfg.Relay.Client; mode != "off" {
		kc := relay.KeepConfig{Want: cfg.Relay.KeepReservations, Candidates: nw.relayCandidates}
		for _, s := range cfg.Relay.StaticRelays {
			if ai, err := peer.AddrInfoFromString(s); err == nil {
				kc.Static = append(kc.Static, ai)
			}
		}
		if mode == "auto" {
			kc.Enabled = orFalse(opts.Private)
			if opts.Private == nil {
				kc.Enabled = nw.PrivatelyReachable
			}
		}
		nw.spawn(func() { nw.relay.client.Keep(nw.ctx, kc) })
	}
	switch cfg.Relay.Service {
	case "on":
		nw.setRelayService(n, cfg, true)
	case "auto":
		public := orFalse(opts.Public)
		if opts.Public == nil {
			public = nw.PubliclyReachable
		}
		nw.spawn(func() { nw.autoRelayService(n, cfg, public) })
	}
}

// orFalse is f, or a function that says false when f is nil (reachability
// unknown).
func orFalse(f func() bool) func() bool {
	if f == nil {
		return func() bool { return false }
	}
	return f
}

// autoRelayService runs the service while the node is publicly reachable.
func (nw *Network) autoRelayService(n *Node, cfg *repo.Config, public func() bool) {
	t := time.NewTicker(serviceCheck)
	defer t.Stop()
	for {
		nw.setRelayService(n, cfg, public())
		select {
		case <-nw.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setRelayService starts or stops the service.
func (nw *Network) setRelayService(n *Node, cfg *repo.Config, on bool) {
	rs := &nw.relay
	rs.mu.Lock()
	defer rs.mu.Unlock()
	switch {
	case on && rs.svc == nil:
		svc, err := relay.NewService(nw.Host, n.Repo.Identity.Key, relayLimits(cfg), nw.logger)
		if err != nil {
			nw.logger.Warn("relay service is off", "err", err)
			return
		}
		rs.svc = svc
		nw.logger.Info("relay service on")
	case !on && rs.svc != nil:
		rs.svc.Close()
		rs.svc = nil
		nw.logger.Info("relay service off")
	}
}

// relayLimits are the service's limits from the config.
func relayLimits(cfg *repo.Config) relay.Limits {
	r := cfg.Relay
	ttl, dur := cfg.RelayDurations()
	return relay.Limits{
		Reservations: r.Reservations, ReservationsPerIP: r.ReservationsPerIP, ReservationTTL: ttl,
		Circuits: r.Circuits, CircuitsPerPeer: r.CircuitsPerPeer,
		CircuitDuration: dur, CircuitBytes: r.CircuitBytes,
	}
}

// relayCandidates are the connected peers that offer relaying.
func (nw *Network) relayCandidates() []peer.ID {
	var out []peer.ID
	for _, p := range nw.Host.Peers() {
		if nw.Host.Peerstore().SupportsProtocol(p, relay.HopProtocol) {
			out = append(out, p)
		}
	}
	return out
}

// RelayClient returns the node's relay client.
func (nw *Network) RelayClient() *relay.Client { return nw.relay.client }

// RelayService returns the relay service while it runs, or nil.
func (nw *Network) RelayService() *relay.Service {
	nw.relay.mu.Lock()
	defer nw.relay.mu.Unlock()
	return nw.relay.svc
}

// stopRelay stops the service (the client goes with the host).
func (nw *Network) stopRelay() {
	nw.setRelayService(nil, nil, false)
}
