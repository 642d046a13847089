package p2p

import (
	"context"
	"fmt"
	"net"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/peer"
)

// Circuit relay hooks. Package p2p/relay dials and accepts relayed
// connections (circuit relay v2); the host upgrades them like any other
// raw connection (TLS 1.3, yamux) and keeps them in its connection table,
// so a relayed connection is a Conn whose remote address ends in
// /p2p-circuit. The host itself knows nothing of the relay protocol.

// CircuitDialer opens raw connections through relays.
type CircuitDialer interface {
	// CanDialCircuit reports whether raddr is a relay address it can
	// dial: [<relay transport addr>]/p2p/RELAY/p2p-circuit.
	CanDialCircuit(raddr ma.Multiaddr) bool
	// DialCircuit opens a raw connection to target through the relay of
	// raddr.
	DialCircuit(ctx context.Context, raddr ma.Multiaddr, target peer.ID) (net.Conn, error)
}

// SetCircuitDialer makes the host dial relay addresses with d (nil: never).
func (h *Host) SetCircuitDialer(d CircuitDialer) {
	h.hmu.Lock()
	h.circuits = d
	h.hmu.Unlock()
}

// AddAddrSource adds addresses the host can be reached at to Addrs (and so
// to identify and the DHT records): the relay client's /p2p-circuit
// addresses while it holds reservations. f is called on every Addrs.
func (h *Host) AddAddrSource(f func() []ma.Multiaddr) {
	h.hmu.Lock()
	h.addrSources = append(h.addrSources, f)
	h.hmu.Unlock()
}

func (h *Host) circuitDialer() CircuitDialer {
	h.hmu.RLock()
	defer h.hmu.RUnlock()
	return h.circuits
}

// extraAddrs returns the addresses of the AddAddrSource functions.
func (h *Host) extraAddrs() []ma.Multiaddr {
	h.hmu.RLock()
	srcs := h.addrSources
	h.hmu.RUnlock()
	var out []ma.Multiaddr
	for _, f := range srcs {
		out = append(out, f()...)
	}
	return out
}

// canDial reports whether the transport or the circuit dialer dials a.
func (h *Host) canDial(a ma.Multiaddr) bool {
	if IsRelayAddr(a) {
		d := h.circuitDialer()
		return d != nil && d.CanDialCircuit(a)
	}
	return h.cfg.Transport.CanDial(a)
}

// dialRaw opens a raw connection to a, through a relay for relay
// addresses.
func (h *Host) dialRaw(ctx context.Context, a ma.Multiaddr, id peer.ID) (net.Conn, error) {
	if IsRelayAddr(a) {
		d := h.circuitDialer()
		if d == nil {
			return nil, fmt.Errorf("%w: no relay client", ErrUnsupportedAddr)
		}
		return d.DialCircuit(ctx, a, id)
	}
	return h.cfg.Transport.Dial(ctx, a)
}

// AcceptRelayed upgrades a raw connection a relay opened to this host on
// behalf of want (the peer the relay's STOP message named) and registers
// it. The connection is refused unless the handshake proves want. The
// caller keeps raw's underlying stream open until the Conn is done.
func (h *Host) AcceptRelayed(raw net.Conn, want peer.ID) (*Conn, error) {
	select {
	case h.pending <- struct{}{}:
	default:
		raw.Close()
		return nil, fmt.Errorf("relayed connection from %s: too many pending handshakes", want.ShortString())
	}
	h.mu.Lock()
	full := h.nIn >= h.cfg.Limits.MaxInbound
	h.mu.Unlock()
	if full {
		<-h.pending
		raw.Close()
		return nil, ErrConnLimit
	}
	c, err := h.upgrade(h.ctx, raw, Inbound, "")
	<-h.pending
	if err != nil {
		return nil, fmt.Errorf("relayed connection from %s: %w", want.ShortString(), err)
	}
	if c.remote != want {
		c.closeWithReason("relayed peer is not the one the relay named")
		return nil, fmt.Errorf("relayed connection: the relay named %s, the handshake proved %s", want, c.remote)
	}
	if err := h.addConn(c); err != nil {
		return nil, err
	}
	return c, nil
}

// IsRelayAddr reports whether a is a relay address: it has /p2p-circuit.
func IsRelayAddr(a ma.Multiaddr) bool {
	for _, c := range a {
		if c.Code() == ma.P_CIRCUIT {
			return true
		}
	}
	return false
}

// Relayed reports whether the connection runs through a relay.
func (c *Conn) Relayed() bool { return IsRelayAddr(c.raddr) }

// Limited reports whether the connection runs through a relay that limits
// its duration or bytes (libp2p's default relays do): fit to coordinate,
// not to carry files. The raw connection says so (relay's circuits have a
// Limited method).
func (c *Conn) Limited() bool {
	l, ok := c.raw.(interface{ Limited() bool })
	return ok && l.Limited()
}

// hasDirect reports whether addrs has an address the transport dials:
// Connect with one dials it even when a relayed connection is open, and
// the direct connection replaces the relayed one.
func (h *Host) hasDirect(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if !IsRelayAddr(a) && h.cfg.Transport.CanDial(a) {
			return true
		}
	}
	return false
}
