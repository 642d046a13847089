package relay

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// circuit is one relayed connection between src and dst.
type circuit struct {
	s        *Service
	src, dst peer.ID

	mu     sync.Mutex
	a, b   *p2p.Stream
	broken bool
}

// spliceBuf is the copy buffer of one direction of a circuit: two per
// circuit, pooled, so that 20 bulk circuits cost 1.25 MiB, not a buffer
// per read.
const spliceBuf = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, spliceBuf); return &b }}

// reset aborts both streams; the ends see their connection fail.
func (c *circuit) reset() {
	c.mu.Lock()
	c.broken = true
	a, b := c.a, c.b
	c.mu.Unlock()
	if a != nil {
		a.Reset()
		b.Reset()
	}
}

// splice copies a to b and b to a until both directions end, a limit is
// reached or the service closes. A direction that reaches CircuitBytes,
// or a circuit older than CircuitDuration, resets both streams.
func (c *circuit) splice(a, b *p2p.Stream) {
	c.mu.Lock()
	c.a, c.b = a, b
	broken := c.broken
	c.mu.Unlock()
	if broken { // the service closed while the circuit was set up
		a.Reset()
		b.Reset()
		return
	}
	if d := c.s.lim.CircuitDuration; d > 0 {
		t := time.AfterFunc(d, c.reset)
		defer t.Stop()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.pipe(b, a)
	}()
	c.pipe(a, b)
	wg.Wait()
	a.Close()
	b.Close()
}

// pipe copies src to dst within the byte limit; at src's end it closes
// dst for writing, at a limit or error it resets the circuit.
func (c *circuit) pipe(dst, src *p2p.Stream) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	var r io.Reader = src
	limit := c.s.lim.CircuitBytes
	if limit > 0 {
		r = io.LimitReader(src, limit)
	}
	n, err := io.CopyBuffer(counter{dst, &c.s.relayed}, r, *bp)
	if err != nil || (limit > 0 && n == limit) {
		if err != nil && !errors.Is(err, io.EOF) {
			c.s.log.Debug("circuit ends", "src", c.src.ShortString(), "dst", c.dst.ShortString(), "bytes", n, "err", err)
		}
		c.reset()
		return
	}
	dst.CloseWrite()
}

// counter counts the bytes written to w in n. As a bare Writer it also
// hides any ReadFrom of w, so that CopyBuffer uses the pooled buffer.
type counter struct {
	w io.Writer
	n *atomic.Int64
}

func (c counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
