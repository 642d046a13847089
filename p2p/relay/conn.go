package relay

import (
	"net"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// circuitConn is one end of a circuit as a raw connection: the hop (or
// stop) stream to the relay, after the relay protocol's messages. The host
// runs its upgrade over it.
type circuitConn struct {
	*p2p.Stream
	local, remote addr
	limit         *Limit // the relay's, nil if none
}

// Limited tells p2p.Conn.Limited that the relay limits the circuit.
func (c *circuitConn) Limited() bool {
	return c.limit != nil && (c.limit.Duration > 0 || c.limit.Data > 0)
}

// Close closes the stream; the relay then closes the other half.
func (c *circuitConn) Close() error { return c.Stream.Close() }

func (c *circuitConn) LocalAddr() net.Addr  { return c.local }
func (c *circuitConn) RemoteAddr() net.Addr { return c.remote }

// addr is a circuit endpoint as a net.Addr that p2p reads as a multiaddr.
type addr struct{ m ma.Multiaddr }

func (a addr) Network() string         { return "p2p-circuit" }
func (a addr) String() string          { return a.m.String() }
func (a addr) Multiaddr() ma.Multiaddr { return a.m }

// circuitAddr is the address of a circuit through the relay at the other
// end of s: the relay's transport address, /p2p/RELAY, /p2p-circuit.
func circuitAddr(s *p2p.Stream) ma.Multiaddr {
	return relayCircuit(s.Conn().RemoteMultiaddr(), s.RemotePeer())
}

// relayCircuit returns base/p2p/relay/p2p-circuit (base may be nil).
func relayCircuit(base ma.Multiaddr, relay peer.ID) ma.Multiaddr {
	out := append(ma.Multiaddr(nil), base...)
	out = append(out, *relay.P2pComponent())
	return append(out, circuitComponent)
}

var circuitComponent = func() ma.Component {
	c, err := ma.NewComponent("p2p-circuit", "")
	if err != nil {
		panic(err)
	}
	return *c
}()

func newCircuitConn(s *p2p.Stream, limit *Limit) *circuitConn {
	return &circuitConn{
		Stream: s,
		limit:  limit,
		local:  addr{ma.Multiaddr{circuitComponent}},
		remote: addr{circuitAddr(s)},
	}
}
