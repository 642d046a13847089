package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/peer"
)

// memNet is an in-memory network of fake hosts for tests: streams are
// pairs of buffered pipes, with optional per-host upload rate limits and
// latency, and hosts that can die.
type memNet struct {
	mu    sync.Mutex
	hosts map[peer.ID]*memHost
}

func newMemNet() *memNet { return &memNet{hosts: make(map[peer.ID]*memHost)} }

// linkOpts shape the traffic a host sends.
type linkOpts struct {
	rate    float64       // bytes per second over all its streams; 0 = unlimited
	latency time.Duration // one way
}

type memHost struct {
	net  *memNet
	id   peer.ID
	opts linkOpts
	lim  *rateLimiter

	mu       sync.Mutex
	handlers map[string]func(share.Stream)
	streams  map[*memStream]struct{}
	dead     bool
	opened   int // streams opened to this host

	writes atomic.Int64 // Write calls on this host's ends of streams
}

func (n *memNet) addHost(name string, opts linkOpts) *memHost {
	h := &memHost{
		net: n, id: peer.ID(name), opts: opts,
		handlers: make(map[string]func(share.Stream)),
		streams:  make(map[*memStream]struct{}),
	}
	if opts.rate > 0 {
		h.lim = &rateLimiter{rate: opts.rate}
	}
	n.mu.Lock()
	n.hosts[h.id] = h
	n.mu.Unlock()
	return h
}

var errHostDead = errors.New("host is dead")

func (h *memHost) SetHandler(proto string, f func(share.Stream)) {
	h.mu.Lock()
	h.handlers[proto] = f
	h.mu.Unlock()
}

func (h *memHost) RemoveHandler(proto string) {
	h.mu.Lock()
	delete(h.handlers, proto)
	h.mu.Unlock()
}

func (h *memHost) NewStream(ctx context.Context, p peer.ID, proto string) (share.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.net.mu.Lock()
	r := h.net.hosts[p]
	h.net.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("dial %s: no such host", p)
	}
	r.mu.Lock()
	f := r.handlers[proto]
	dead := r.dead
	r.opened++
	r.mu.Unlock()
	if dead || h.isDead() {
		return nil, fmt.Errorf("dial %s: %w", p, errHostDead)
	}
	if f == nil {
		return nil, fmt.Errorf("dial %s: %w: %s", p, mss.ErrNotSupported, proto)
	}
	ab := newPipe(h.opts.latency) // h -> r
	ba := newPipe(r.opts.latency) // r -> h
	local := &memStream{r: ba, w: ab, local: h, remote: r.id, lim: h.lim}
	remote := &memStream{r: ab, w: ba, local: r, remote: h.id, lim: r.lim}
	local.peer, remote.peer = remote, local
	h.track(local)
	r.track(remote)
	go f(remote)
	return local, nil
}

func (h *memHost) isDead() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dead
}

func (h *memHost) track(s *memStream) {
	h.mu.Lock()
	h.streams[s] = struct{}{}
	h.mu.Unlock()
}

// kill makes h die: its streams reset and it accepts and opens no more.
func (h *memHost) kill() {
	h.mu.Lock()
	h.dead = true
	ss := make([]*memStream, 0, len(h.streams))
	for s := range h.streams {
		ss = append(ss, s)
	}
	h.mu.Unlock()
	for _, s := range ss {
		s.Reset()
	}
}

func (h *memHost) streamsOpened() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opened
}

const limiterBurst = 20 * time.Millisecond

// rateLimiter spaces out writes to a rate in bytes per second.
type rateLimiter struct {
	mu   sync.Mutex
	rate float64
	next time.Time
}

// reserve returns when n bytes may be sent.
func (l *rateLimiter) reserve(n int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Credit for up to limiterBurst of idle time, so that a writer that
	// wakes late does not lose bandwidth.
	if earliest := time.Now().Add(-limiterBurst); l.next.Before(earliest) {
		l.next = earliest
	}
	at := l.next
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	return at
}

var errReset = errors.New("stream reset")

// pipe is one direction of a stream: written chunks become readable after
// the latency; at most pipeCap bytes are buffered.
type pipe struct {
	mu         sync.Mutex
	chunks     []chunk
	buffered   int
	latency    time.Duration
	closed     bool // writer closed: EOF once drained
	readClosed bool // reader gone: writes fail
	reset      bool
	changed    chan struct{}
}

type chunk struct {
	buf   *[]byte
	b     []byte
	ready time.Time
}

const (
	pipeCap   = 1 << 20
	chunkSize = 64 << 10
)

func newPipe(latency time.Duration) *pipe {
	return &pipe{latency: latency, changed: make(chan struct{})}
}

func (p *pipe) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *pipe) setReset() {
	p.mu.Lock()
	p.reset = true
	for _, c := range p.chunks {
		putBuf(c.buf)
	}
	p.chunks, p.buffered = nil, 0
	p.notifyLocked()
	p.mu.Unlock()
}

// wait blocks until ch is closed, t passes (if not zero) or the deadline
// passes.
func wait(ch <-chan struct{}, t, deadline time.Time) error {
	var timer <-chan time.Time
	var dl <-chan time.Time
	if !t.IsZero() {
		tm := time.NewTimer(time.Until(t))
		defer tm.Stop()
		timer = tm.C
	}
	if !deadline.IsZero() {
		if !time.Now().Before(deadline) {
			return os.ErrDeadlineExceeded
		}
		tm := time.NewTimer(time.Until(deadline))
		defer tm.Stop()
		dl = tm.C
	}
	select {
	case <-ch:
	case <-timer:
	case <-dl:
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (p *pipe) read(b []byte, deadline func() time.Time) (int, error) {
	for {
		p.mu.Lock()
		if p.reset {
			p.mu.Unlock()
			return 0, errReset
		}
		if p.readClosed {
			p.mu.Unlock()
			return 0, io.ErrClosedPipe
		}
		var readyAt time.Time
		if len(p.chunks) > 0 {
			c := &p.chunks[0]
			if now := time.Now(); !c.ready.After(now) {
				n := copy(b, c.b)
				c.b = c.b[n:]
				p.buffered -= n
				if len(c.b) == 0 {
					putBuf(c.buf)
					p.chunks[0] = chunk{}
					p.chunks = p.chunks[1:]
				}
				p.notifyLocked()
				p.mu.Unlock()
				return n, nil
			}
			readyAt = c.ready
		} else if p.closed {
			p.mu.Unlock()
			return 0, io.EOF
		}
		ch := p.changed
		p.mu.Unlock()
		if err := wait(ch, readyAt, deadline()); err != nil {
			return 0, err
		}
	}
}

func (p *pipe) write(b []byte, lim *rateLimiter, deadline func() time.Time) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), chunkSize)
		if lim != nil {
			at := lim.reserve(n)
			for time.Now().Before(at) {
				p.mu.Lock()
				ch, reset := p.changed, p.reset
				p.mu.Unlock()
				if reset {
					return written, errReset
				}
				if err := wait(ch, at, deadline()); err != nil {
					return written, err
				}
			}
		}
		for {
			p.mu.Lock()
			if p.reset {
				p.mu.Unlock()
				return written, errReset
			}
			if p.closed {
				p.mu.Unlock()
				return written, io.ErrClosedPipe
			}
			if p.readClosed {
				p.mu.Unlock()
				return written, errReset
			}
			if p.buffered+n <= pipeCap || p.buffered == 0 {
				buf := getBuf(n)
				c := chunk{buf: buf, b: (*buf)[:n], ready: time.Now().Add(p.latency)}
				copy(c.b, b[:n])
				p.chunks = append(p.chunks, c)
				p.buffered += n
				p.notifyLocked()
				p.mu.Unlock()
				break
			}
			ch := p.changed
			p.mu.Unlock()
			if err := wait(ch, time.Time{}, deadline()); err != nil {
				return written, err
			}
		}
		b = b[n:]
		written += n
	}
	return written, nil
}

// memStream is one end of an in-memory stream.
type memStream struct {
	r, w   *pipe
	local  *memHost
	remote peer.ID
	peer   *memStream
	lim    *rateLimiter

	dmu    sync.Mutex
	rdl    time.Time
	wdl    time.Time
	closed bool
}

func (s *memStream) readDeadline() time.Time {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return s.rdl
}

func (s *memStream) writeDeadline() time.Time {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return s.wdl
}

func (s *memStream) Read(b []byte) (int, error) { return s.r.read(b, s.readDeadline) }
func (s *memStream) Write(b []byte) (int, error) {
	s.local.writes.Add(1)
	return s.w.write(b, s.lim, s.writeDeadline)
}

func (s *memStream) CloseWrite() error {
	s.w.mu.Lock()
	s.w.closed = true
	s.w.notifyLocked()
	s.w.mu.Unlock()
	return nil
}

func (s *memStream) Close() error {
	s.CloseWrite()
	s.r.mu.Lock()
	s.r.readClosed = true
	s.r.notifyLocked()
	s.r.mu.Unlock()
	s.untrack()
	return nil
}

func (s *memStream) Reset() error {
	s.r.setReset()
	s.w.setReset()
	s.untrack()
	s.peer.untrack()
	return nil
}

func (s *memStream) untrack() {
	s.local.mu.Lock()
	delete(s.local.streams, s)
	s.local.mu.Unlock()
}

func (s *memStream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

func (s *memStream) SetReadDeadline(t time.Time) error {
	s.dmu.Lock()
	s.rdl = t
	s.dmu.Unlock()
	s.r.mu.Lock()
	s.r.notifyLocked()
	s.r.mu.Unlock()
	return nil
}

func (s *memStream) SetWriteDeadline(t time.Time) error {
	s.dmu.Lock()
	s.wdl = t
	s.dmu.Unlock()
	s.w.mu.Lock()
	s.w.notifyLocked()
	s.w.mu.Unlock()
	return nil
}

func (s *memStream) RemotePeer() peer.ID { return s.remote }
