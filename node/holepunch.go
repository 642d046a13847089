package node

import (
	"time"

	"github.com/share-p2p/share/metrics"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/dcutr"
)

// transport is the host's transport: t, or TCP listening with
// SO_REUSEPORT so that hole punching can dial from the listen port.
func transport(t p2p.Transport) p2p.Transport {
	if t != nil {
		return t
	}
	return &p2p.TCP{ReusePort: true}
}

// startHolePunch runs DCUtR on every network (its protocol ID is the same
// on share and ipfs): relayed connections become direct where the NATs
// allow, and the outcomes are counted in /metrics.
func (nw *Network) startHolePunch(m *metrics.Node) {
	nw.holepunch = dcutr.New(nw.Host, dcutr.Config{
		Logger: nw.logger,
		OnOutcome: func(role, outcome string, elapsed time.Duration) {
			m.HolePunch.With(role, outcome).Inc()
			if outcome == dcutr.Success {
				m.HolePunchMillis.Set(elapsed.Milliseconds())
			}
		},
	})
}
