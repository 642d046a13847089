package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/observed"
	"github.com/share-p2p/share/p2p/peer"
)

// Hole punching hooks. Package p2p/dcutr coordinates a punch over a
// relayed connection; the host dials the peer's addresses from its own
// listen port (TCP with ReusePort), so that the two dials meet in a TCP
// simultaneous open, and takes the handshake role dcutr assigns: both
// sides dialled, so one of them must act as the listener.

// DialHolePunch dials id at every direct address of addrs at once, from a
// listen port when the transport can (PortReuser), upgrades the first
// connection that opens in the handshake role client says (false: the
// listener's part) and registers it; a direct connection replaces a
// relayed one. It returns the peer's direct connection, which may be one
// the peer's dial opened at the same moment.
func (h *Host) DialHolePunch(ctx context.Context, id peer.ID, addrs []ma.Multiaddr, client bool) (*Conn, error) {
	if id == h.id {
		return nil, ErrSelfDial
	}
	var direct []ma.Multiaddr
	for _, a := range addrs {
		if !IsRelayAddr(a) && h.cfg.Transport.CanDial(a) {
			direct = append(direct, a)
		}
	}
	if len(direct) == 0 {
		return nil, fmt.Errorf("hole punch %s: %w", id.ShortString(), ErrNoAddresses)
	}
	results := make(chan dialResult, len(direct))
	for _, a := range direct {
		go func() {
			c, err := h.punchOne(ctx, a, id, client)
			results <- dialResult{c, err}
		}()
	}
	var errs []error
	for i := range direct {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if rest := len(direct) - i - 1; rest > 0 {
			h.wg.Add(1)
			go h.discardDials(results, rest)
		}
		if err := h.addConn(r.conn); err != nil && !errors.Is(err, errDuplicate) {
			return nil, err
		}
		break
	}
	if c := h.DirectConn(id); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("hole punch %s: %w", id.ShortString(), errors.Join(errs...))
}

// punchOne dials one address for a hole punch and upgrades it.
func (h *Host) punchOne(ctx context.Context, a ma.Multiaddr, id peer.ID, client bool) (*Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, h.cfg.HandshakeTimeout)
	raw, err := h.dialFromListenPort(dctx, a)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	c, err := h.upgradeAs(ctx, raw, Outbound, id, client)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	return c, nil
}

// dialFromListenPort dials a from the listen port of a's family when the
// transport can, and from any port otherwise.
func (h *Host) dialFromListenPort(ctx context.Context, a ma.Multiaddr) (net.Conn, error) {
	pr, ok := h.cfg.Transport.(PortReuser)
	if !ok || len(a) == 0 {
		return h.cfg.Transport.Dial(ctx, a)
	}
	for _, l := range h.ListenAddrs() {
		if len(l) > 0 && l[0].Code() == a[0].Code() {
			if raw, err := pr.DialFrom(ctx, l, a); !errors.Is(err, ErrUnsupportedAddr) {
				return raw, err
			}
		}
	}
	return h.cfg.Transport.Dial(ctx, a)
}

// DirectConn returns an open connection to id that does not go through a
// relay, or nil.
func (h *Host) DirectConn(id peer.ID) *Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns[id] {
		if !c.IsClosed() && !c.Relayed() {
			return c
		}
	}
	return nil
}

// expectedPunch is a peer whose hole punch may reach the listener from an
// address (ExpectHolePunch).
type expectedPunch struct {
	id peer.ID
	n  int // the calls that expect it
}

// ExpectHolePunch makes the host take the client's part in the handshake
// of a connection its listener accepts from one of addrs, insisting that
// the peer is id, until done is called. A punch's receiver, which dials as
// the client, calls it before it answers CONNECT: the initiator dials as
// the listener, and when its SYN comes first (no NAT on the path, or ours
// was late) our listener accepts it; had both sides taken the listener's
// part, each would wait for the other until the handshake timed out, and
// the attempt would fail.
func (h *Host) ExpectHolePunch(id peer.ID, addrs []ma.Multiaddr) (done func()) {
	var keys []netip.AddrPort
	for _, a := range addrs {
		if ip, port, ok := observed.ThinWaist(a); ok {
			keys = append(keys, netip.AddrPortFrom(ip.Unmap(), port))
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.punchFrom == nil {
		h.punchFrom = map[netip.AddrPort]expectedPunch{}
	}
	for _, k := range keys {
		e := h.punchFrom[k]
		h.punchFrom[k] = expectedPunch{id: id, n: e.n + 1}
	}
	return func() { h.unexpect(keys) }
}

func (h *Host) unexpect(keys []netip.AddrPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		if e := h.punchFrom[k]; e.n > 1 {
			h.punchFrom[k] = expectedPunch{id: e.id, n: e.n - 1}
		} else {
			delete(h.punchFrom, k)
		}
	}
}

// punchFromAddr returns the peer whose hole punch an inbound connection
// from remote is (ExpectHolePunch), or "".
func (h *Host) punchFromAddr(remote net.Addr) peer.ID {
	ta, ok := remote.(*net.TCPAddr)
	if !ok {
		return ""
	}
	ap := ta.AddrPort()
	k := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.punchFrom[k].id
}
