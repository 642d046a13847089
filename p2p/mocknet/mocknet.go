// Package mocknet is an in-memory network for tests: a p2p.Transport whose
// listeners bind /memory/N and whose connections are buffered pipes that
// behave like TCP. Hosts on it run the whole stack (TLS, yamux, protocol
// negotiation, identify) with no sockets, so tests of logic spin up many
// nodes in one process, as go-libp2p's mocknet does. Production code does
// not import it.
//
// It imports nothing of p2p (p2p.Listener is an alias of the interface
// literal Listener is), so p2p's own tests use it too.
package mocknet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// Listener is p2p.Listener: it accepts raw connections on one bound
// address.
type Listener = interface {
	Accept() (net.Conn, error)
	Close() error
	Multiaddr() ma.Multiaddr
}

// ErrUnsupportedAddr is returned for multiaddrs other than /memory/N.
var ErrUnsupportedAddr = errors.New("unsupported multiaddr")

// Network is an in-memory network, a p2p.Transport: listeners bind
// /memory/N and connections are buffered pipes that behave like TCP
// (writes do not wait for the reader until the buffer is full, deadlines
// work, Close gives the other end EOF).
type Network struct {
	mu        sync.Mutex
	next      uint64
	listeners map[uint64]*memListener
	// BufSize is the buffer of each direction of a connection; 0 means 1 MiB.
	BufSize int
}

// New returns an empty in-memory network.
func New() *Network {
	return &Network{listeners: map[uint64]*memListener{}, next: 1}
}

func memPort(m ma.Multiaddr) (uint64, bool) {
	if len(m) != 1 || m[0].Code() != ma.P_MEMORY {
		return 0, false
	}
	n, err := strconv.ParseUint(m[0].Value(), 10, 64)
	return n, err == nil
}

// CanDial implements p2p.Transport.
func (n *Network) CanDial(m ma.Multiaddr) bool {
	_, ok := memPort(m)
	return ok
}

// Listen implements p2p.Transport for /memory/N (0 picks a free N).
func (n *Network) Listen(laddr ma.Multiaddr) (Listener, error) {
	port, ok := memPort(laddr)
	if !ok {
		return nil, fmt.Errorf("%w for memory: %s", ErrUnsupportedAddr, laddr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == 0 {
		for n.listeners[n.next] != nil {
			n.next++
		}
		port = n.next
		n.next++
	}
	if n.listeners[port] != nil {
		return nil, fmt.Errorf("listen %s: address in use", laddr)
	}
	l := &memListener{net: n, port: port, ch: make(chan net.Conn), done: make(chan struct{})}
	n.listeners[port] = l
	return l, nil
}

// Dial implements p2p.Transport.
func (n *Network) Dial(ctx context.Context, raddr ma.Multiaddr) (net.Conn, error) {
	port, ok := memPort(raddr)
	if !ok {
		return nil, fmt.Errorf("%w for memory: %s", ErrUnsupportedAddr, raddr)
	}
	n.mu.Lock()
	l := n.listeners[port]
	n.next++
	local := n.next + 1<<32 // ephemeral "ports" above the listener range
	n.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("dial %s: connection refused", raddr)
	}
	a, b := Pipe(memAddr(local), memAddr(port), n.BufSize)
	select {
	case l.ch <- b:
		return a, nil
	case <-l.done:
		return nil, fmt.Errorf("dial %s: connection refused", raddr)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memListener struct {
	net       *Network
	port      uint64
	ch        chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.net.mu.Lock()
		delete(l.net.listeners, l.port)
		l.net.mu.Unlock()
	})
	return nil
}

func (l *memListener) Multiaddr() ma.Multiaddr { return memAddr(l.port).Multiaddr() }

type memAddr uint64

func (a memAddr) Network() string { return "memory" }
func (a memAddr) String() string  { return strconv.FormatUint(uint64(a), 10) }
func (a memAddr) Multiaddr() ma.Multiaddr {
	c, _ := ma.NewComponent("memory", a.String())
	return c.Multiaddr()
}

// Pipe returns the two ends of a buffered in-memory connection; bufSize
// (0 means 1 MiB) bounds the bytes in flight in each direction.
func Pipe(aAddr, bAddr net.Addr, bufSize int) (net.Conn, net.Conn) {
	if bufSize <= 0 {
		bufSize = 1 << 20
	}
	ab := newPipeBuf(bufSize)
	ba := newPipeBuf(bufSize)
	a := &memConn{r: ba, w: ab, laddr: aAddr, raddr: bAddr, done: make(chan struct{})}
	b := &memConn{r: ab, w: ba, laddr: bAddr, raddr: aAddr, done: make(chan struct{})}
	a.rd.init()
	a.wd.init()
	b.rd.init()
	b.wd.init()
	return a, b
}

// errPipeClosed is what a write gets once the reading end is closed (TCP
// would say "connection reset").
var errPipeClosed = errors.New("memory pipe: connection reset by peer")

// pipeBuf is one direction of a memory connection.
type pipeBuf struct {
	mu       sync.Mutex
	data     []byte
	off      int
	max      int
	wclosed  bool // writer closed: reader gets EOF after the data
	rclosed  bool // reader closed: writer gets errPipeClosed
	readable chan struct{}
	writable chan struct{}
}

func newPipeBuf(max int) *pipeBuf {
	return &pipeBuf{max: max, readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (p *pipeBuf) read(b []byte, deadline, done <-chan struct{}) (int, error) {
	for {
		p.mu.Lock()
		if n := len(p.data) - p.off; n > 0 {
			k := copy(b, p.data[p.off:])
			p.off += k
			if p.off == len(p.data) {
				p.data, p.off = p.data[:0], 0
			}
			p.mu.Unlock()
			signal(p.writable)
			if k < n {
				signal(p.readable)
			}
			return k, nil
		}
		wclosed, rclosed := p.wclosed, p.rclosed
		p.mu.Unlock()
		if rclosed {
			return 0, net.ErrClosed
		}
		if wclosed {
			return 0, io.EOF
		}
		if len(b) == 0 {
			return 0, nil
		}
		select {
		case <-p.readable:
		case <-deadline:
			return 0, os.ErrDeadlineExceeded
		case <-done:
			return 0, net.ErrClosed
		}
	}
}

func (p *pipeBuf) write(b []byte, deadline, done <-chan struct{}) (int, error) {
	total := 0
	for {
		p.mu.Lock()
		if p.wclosed {
			p.mu.Unlock()
			return total, net.ErrClosed
		}
		if p.rclosed {
			p.mu.Unlock()
			return total, errPipeClosed
		}
		if len(b) == 0 {
			p.mu.Unlock()
			return total, nil
		}
		if space := p.max - (len(p.data) - p.off); space > 0 {
			if p.off > 0 && len(p.data)+min(space, len(b)) > cap(p.data) {
				p.data = append(p.data[:0], p.data[p.off:]...)
				p.off = 0
			}
			k := min(space, len(b))
			p.data = append(p.data, b[:k]...)
			b = b[k:]
			total += k
			p.mu.Unlock()
			signal(p.readable)
			continue
		}
		p.mu.Unlock()
		select {
		case <-p.writable:
		case <-deadline:
			return total, os.ErrDeadlineExceeded
		case <-done:
			return total, net.ErrClosed
		}
	}
}

func (p *pipeBuf) closeWrite() {
	p.mu.Lock()
	p.wclosed = true
	p.mu.Unlock()
	signal(p.readable)
}

func (p *pipeBuf) closeRead() {
	p.mu.Lock()
	p.rclosed = true
	p.data, p.off = nil, 0
	p.mu.Unlock()
	signal(p.writable)
}

type memConn struct {
	r, w         *pipeBuf
	laddr, raddr net.Addr
	rd, wd       deadline
	done         chan struct{}
	closeOnce    sync.Once
}

func (c *memConn) Read(b []byte) (int, error)  { return c.r.read(b, c.rd.wait(), c.done) }
func (c *memConn) Write(b []byte) (int, error) { return c.w.write(b, c.wd.wait(), c.done) }
func (c *memConn) LocalAddr() net.Addr         { return c.laddr }
func (c *memConn) RemoteAddr() net.Addr        { return c.raddr }

func (c *memConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.w.closeWrite()
		c.r.closeRead()
	})
	return nil
}

// CloseWrite half-closes the connection like (*net.TCPConn).CloseWrite.
func (c *memConn) CloseWrite() error {
	c.w.closeWrite()
	return nil
}

func (c *memConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}
func (c *memConn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// deadline is a settable deadline whose channel is closed once it passes.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func (d *deadline) init() { d.cancel = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait until it closed cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		c := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(c) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
