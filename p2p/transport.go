package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Transport opens raw, unauthenticated byte streams: TCP in production, an
// in-memory network (package mocknet) in tests.
type Transport interface {
	// Listen binds laddr. A port (or memory address) of 0 picks a free one.
	Listen(laddr ma.Multiaddr) (Listener, error)
	// Dial connects to raddr, a transport address without /p2p.
	Dial(ctx context.Context, raddr ma.Multiaddr) (net.Conn, error)
	// CanDial reports whether raddr is an address of this transport.
	CanDial(raddr ma.Multiaddr) bool
}

// Listener accepts raw connections on one bound address. It is an alias
// of an interface literal, not a defined type, so that a transport outside
// this package implements Transport without importing it: the in-memory
// one of package mocknet, which this package's own tests use.
type Listener = interface {
	Accept() (net.Conn, error)
	Close() error
	// Multiaddr is the bound address, with the actual port.
	Multiaddr() ma.Multiaddr
}

// ErrUnsupportedAddr is returned for multiaddrs a transport cannot use.
var ErrUnsupportedAddr = errors.New("unsupported multiaddr")

// TCP is the TCP transport for /ip4/A/tcp/N and /ip6/A/tcp/N.
type TCP struct {
	// DialTimeout bounds the TCP connect of one address; 0 means 5 s.
	DialTimeout time.Duration
	// ReusePort binds listeners with SO_REUSEPORT (linux only), so that
	// DialFrom can dial from a listen port: hole punching (package
	// dcutr) needs it. A port another process listens on is still
	// refused: Listen first binds it without the option.
	ReusePort bool
}

// PortReuser is a Transport that can dial from the port of one of its
// listeners (TCP with ReusePort). Hole punching dials this way: the peer
// dials the NAT mapping of our listen port at the same time, and only a
// dial from that port meets it.
type PortReuser interface {
	DialFrom(ctx context.Context, laddr, raddr ma.Multiaddr) (net.Conn, error)
}

func isTCP(m ma.Multiaddr) bool {
	if len(m) != 2 || m[1].Code() != ma.P_TCP {
		return false
	}
	c := m[0].Code()
	return c == ma.P_IP4 || c == ma.P_IP6
}

// CanDial implements Transport.
func (t *TCP) CanDial(m ma.Multiaddr) bool { return isTCP(m) }

// Listen implements Transport.
func (t *TCP) Listen(laddr ma.Multiaddr) (Listener, error) {
	if !isTCP(laddr) {
		return nil, fmt.Errorf("%w for tcp: %s", ErrUnsupportedAddr, laddr)
	}
	network, host, err := manet.DialArgs(laddr)
	if err != nil {
		return nil, err
	}
	ln, err := t.listen(network, host)
	if err != nil {
		return nil, err
	}
	bound, err := manet.FromNetAddr(ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &tcpListener{ln: ln, addr: bound}, nil
}

// Dial implements Transport.
func (t *TCP) Dial(ctx context.Context, raddr ma.Multiaddr) (net.Conn, error) {
	if !isTCP(raddr) {
		return nil, fmt.Errorf("%w for tcp: %s", ErrUnsupportedAddr, raddr)
	}
	network, host, err := manet.DialArgs(raddr)
	if err != nil {
		return nil, err
	}
	timeout := t.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, network, host)
}

// listen binds host, with SO_REUSEPORT when ReusePort is set. The port is
// first bound without it: with it alone, a port that another process
// (another share, kubo) listens on with the option would be shared
// silently, and the kernel would split the connections between us.
func (t *TCP) listen(network, host string) (net.Listener, error) {
	if !t.ReusePort || !canReusePort {
		return net.Listen(network, host)
	}
	probe, err := net.Listen(network, host)
	if err != nil {
		return nil, err
	}
	bound := probe.Addr().String() // port 0 picked a port: keep it
	probe.Close()
	lc := net.ListenConfig{Control: reusePort}
	return lc.Listen(context.Background(), network, bound)
}

// DialFrom implements PortReuser: it dials raddr from laddr, the address
// of a listener bound with ReusePort.
func (t *TCP) DialFrom(ctx context.Context, laddr, raddr ma.Multiaddr) (net.Conn, error) {
	if !t.ReusePort || !canReusePort {
		return nil, fmt.Errorf("%w: tcp: ReusePort is off", ErrUnsupportedAddr)
	}
	if !isTCP(raddr) || !isTCP(laddr) {
		return nil, fmt.Errorf("%w for tcp: %s from %s", ErrUnsupportedAddr, raddr, laddr)
	}
	network, host, err := manet.DialArgs(raddr)
	if err != nil {
		return nil, err
	}
	local, err := manet.ToNetAddr(laddr)
	if err != nil {
		return nil, err
	}
	timeout := t.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: timeout, LocalAddr: local, Control: reusePort}
	return d.DialContext(ctx, network, host)
}

type tcpListener struct {
	ln   net.Listener
	addr ma.Multiaddr
}

func (l *tcpListener) Accept() (net.Conn, error) { return l.ln.Accept() }
func (l *tcpListener) Close() error              { return l.ln.Close() }
func (l *tcpListener) Multiaddr() ma.Multiaddr   { return l.addr }

// multiaddrOf converts a connection endpoint to a multiaddr.
func multiaddrOf(a net.Addr) ma.Multiaddr {
	if m, ok := a.(interface{ Multiaddr() ma.Multiaddr }); ok {
		return m.Multiaddr()
	}
	m, err := manet.FromNetAddr(a)
	if err != nil {
		return nil
	}
	return m
}

// expandUnspecified replaces 0.0.0.0 and :: by the interface addresses of
// the same family. Link-local IPv6 addresses are left out: they need a zone
// to be dialled.
func expandUnspecified(addrs []ma.Multiaddr) []ma.Multiaddr {
	var ifaces []ma.Multiaddr
	var out []ma.Multiaddr
	for _, a := range addrs {
		if !manet.IsIPUnspecified(a) {
			out = append(out, a)
			continue
		}
		if ifaces == nil {
			all, err := manet.InterfaceMultiaddrs()
			if err != nil {
				out = append(out, a)
				continue
			}
			for _, ia := range all {
				if !manet.IsIP6LinkLocal(ia) {
					ifaces = append(ifaces, ia)
				}
			}
		}
		res, err := manet.ResolveUnspecifiedAddress(a, ifaces)
		if err != nil {
			continue
		}
		out = append(out, res...)
	}
	return ma.Unique(out)
}
