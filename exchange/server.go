package exchange

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/traffic"
)

// limiter is a counting semaphore whose waits can be abandoned.
type limiter struct {
	mu      sync.Mutex
	avail   int64
	max     int64
	peak    int64 // the most ever held at once, for tests
	waiters int
	wait    chan struct{} // closed when avail grows and someone waits
}

func newLimiter(max int64) *limiter {
	return &limiter{avail: max, max: max, wait: make(chan struct{})}
}

// acquire takes n (at most max) units, waiting until they are free or done
// is closed. It returns how many it took, 0 when done closed first.
func (l *limiter) acquire(n int64, done <-chan struct{}) int64 {
	n = min(n, l.max)
	l.mu.Lock()
	for l.avail < n {
		w := l.wait
		l.waiters++
		l.mu.Unlock()
		select {
		case <-w:
		case <-done:
			l.mu.Lock()
			l.waiters--
			l.mu.Unlock()
			return 0
		}
		l.mu.Lock()
		l.waiters--
	}
	l.avail -= n
	l.peak = max(l.peak, l.max-l.avail)
	l.mu.Unlock()
	return n
}

func (l *limiter) release(n int64) {
	if n == 0 {
		return
	}
	l.mu.Lock()
	l.avail += n
	if l.waiters > 0 {
		close(l.wait)
		l.wait = make(chan struct{})
	}
	l.mu.Unlock()
}

// peerQuota is what one peer may hold on the server over all its streams.
type peerQuota struct {
	streams int // guarded by Exchange.mu
	reqs    *limiter
	bytes   *limiter
	spills  chan struct{} // one per spill running (see slowLoad)
}

func (e *Exchange) acquireQuota(p peer.ID) *peerQuota {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := e.peers[p]
	if q == nil {
		q = &peerQuota{
			reqs:   newLimiter(int64(e.cfg.MaxRequests)),
			bytes:  newLimiter(int64(e.cfg.MaxBufferedBytes)),
			spills: make(chan struct{}, maxLoads-1),
		}
		e.peers[p] = q
	}
	q.streams++
	return q
}

func (e *Exchange) releaseQuota(p peer.ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if q := e.peers[p]; q != nil {
		q.streams--
		if q.streams == 0 {
			q.reqs.mu.Lock()
			e.peakReqs = max(e.peakReqs, q.reqs.peak)
			q.reqs.mu.Unlock()
			q.bytes.mu.Lock()
			e.peakBytes = max(e.peakBytes, q.bytes.peak)
			q.bytes.mu.Unlock()
			delete(e.peers, p)
		}
	}
}

// request is a WANT the server has read and not yet answered.
type request struct {
	c         cid.Cid
	have      bool // WANT_HAVE
	cancelled bool // guarded by serverStream.mu
}

// answer is what the loader hands the writer.
type answer struct {
	req     *request
	typ     msgType
	parts   [][]byte // the block's bytes, in the pieces the store lent
	size    int      // their total length
	release func()   // hands parts back to the store once written; may be nil
}

func (a *answer) done() {
	if a.release != nil {
		a.release()
		a.release = nil
	}
}

// serverStream serves one inbound stream: a reader queues requests, a
// loader fetches blocks from the store ahead of a writer that sends them.
type serverStream struct {
	e    *Exchange
	s    share.Stream
	q    *peerQuota
	tc   *traffic.Counter // the peer's
	ctx  context.Context
	done chan struct{} // closed by fail

	mu     sync.Mutex
	queue  []*request
	byCID  map[cid.Cid]*request
	eof    bool // the client closed its writing half
	wake   chan struct{}
	err    error
	failed bool

	// Quota units held by this stream, returned when it ends.
	heldReqs, heldBytes int64
	heldMu              sync.Mutex
}

// serve is the handler of inbound block streams.
func (e *Exchange) serve(s share.Stream) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		s.Reset()
		return
	}
	e.wg.Add(1)
	e.mu.Unlock()
	defer e.wg.Done()

	p := s.RemotePeer()
	q := e.acquireQuota(p)
	defer e.releaseQuota(p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ss := &serverStream{
		e: e, s: s, q: q, ctx: ctx, tc: e.cfg.Traffic.Peer(p),
		done:  make(chan struct{}),
		byCID: make(map[cid.Cid]*request),
		wake:  make(chan struct{}, 1),
	}
	go func() {
		select {
		case <-e.done:
			ss.fail(errors.New("exchange closed"))
		case <-ss.done:
		}
	}()

	answers := make(chan answer, 16)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ss.load(answers) }()
	go func() { defer wg.Done(); ss.write(answers) }()
	if err := ss.read(); err != nil {
		ss.fail(err)
	}
	wg.Wait()
	ss.fail(nil) // ends the watcher goroutine
	cancel()
	ss.heldMu.Lock()
	q.reqs.release(ss.heldReqs)
	q.bytes.release(ss.heldBytes)
	ss.heldMu.Unlock()
}

// fail tears the stream down; err nil means a clean end after the writer
// closed it.
func (ss *serverStream) fail(err error) {
	ss.mu.Lock()
	if ss.failed {
		ss.mu.Unlock()
		return
	}
	ss.failed, ss.err = true, err
	close(ss.done)
	ss.mu.Unlock()
	if err != nil {
		ss.e.log.Debug("block stream ends", "peer", ss.s.RemotePeer(), "err", err)
		if errors.Is(err, ErrBadMessage) || errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrProtocol) {
			ss.e.badPeer(ss.s.RemotePeer(), err)
		}
		ss.s.Reset()
	}
}

func (ss *serverStream) hold(reqs, bytes int64) {
	ss.heldMu.Lock()
	ss.heldReqs += reqs
	ss.heldBytes += bytes
	ss.heldMu.Unlock()
}

// owes reports whether the stream holds requests it has not answered.
func (ss *serverStream) owes() bool {
	ss.heldMu.Lock()
	defer ss.heldMu.Unlock()
	return ss.heldReqs > 0
}

func (ss *serverStream) unhold(reqs, bytes int64) {
	ss.hold(-reqs, -bytes)
	ss.q.reqs.release(reqs)
	ss.q.bytes.release(bytes)
}

// read reads requests until the client closes its half (nil) or fails.
func (ss *serverStream) read() error {
	fr := newFrameReaderMax(ss.s, ss.e.cfg.MaxBlockSize)
	for {
		ss.s.SetReadDeadline(time.Now().Add(ss.e.cfg.IdleTimeout))
		// Idle means nothing arrives and nothing is owed: a client waiting
		// for answers this stream has not sent yet sends nothing either.
		if _, err := fr.br.Peek(1); err != nil && isTimeout(err) && ss.owes() {
			continue
		}
		m, buf, err := fr.next()
		putBuf(buf)
		if err == io.EOF {
			ss.mu.Lock()
			ss.eof = true
			ss.mu.Unlock()
			ss.signal()
			return nil
		}
		if err != nil {
			return err
		}
		switch m.typ {
		case msgWantBlock, msgWantHave:
			// Throttle: read nothing more until the peer's queue has room.
			if ss.q.reqs.acquire(1, ss.done) == 0 {
				return nil
			}
			ss.hold(1, 0)
			r := &request{c: m.cid, have: m.typ == msgWantHave}
			ss.mu.Lock()
			ss.queue = append(ss.queue, r)
			if !r.have {
				ss.byCID[r.c] = r
			}
			ss.mu.Unlock()
			ss.signal()
		case msgCancel:
			ss.mu.Lock()
			if r := ss.byCID[m.cid]; r != nil {
				r.cancelled = true
				delete(ss.byCID, m.cid)
			}
			ss.mu.Unlock()
		default:
			return fmt.Errorf("%w: client sent %s", ErrProtocol, m.typ)
		}
	}
}

func (ss *serverStream) signal() {
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

// next returns the next request to answer, or nil once the client has
// closed its half and everything is answered, or the stream failed.
func (ss *serverStream) next() *request {
	for {
		ss.mu.Lock()
		r, over := ss.popLocked(), ss.eof || ss.failed
		ss.mu.Unlock()
		if r != nil || over {
			return r
		}
		select {
		case <-ss.wake:
		case <-ss.done:
		}
	}
}

// queued returns the next request if one is queued, without waiting.
func (ss *serverStream) queued() *request {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.popLocked()
}

// popLocked takes the first queued request; nil if none or the stream failed.
func (ss *serverStream) popLocked() *request {
	if ss.failed || len(ss.queue) == 0 {
		return nil
	}
	r := ss.queue[0]
	ss.queue[0] = nil
	ss.queue = ss.queue[1:]
	if len(ss.queue) == 0 {
		ss.queue = ss.queue[:0:0] // let the backing array go
	}
	return r
}

func (ss *serverStream) isCancelled(r *request) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return r.cancelled
}

// slowLoad is how long the server waits for a block to load before it
// answers the requests queued behind it meanwhile (spill): a block that
// must come from a busy disk then delays only itself. From the page cache a
// block loads in a fraction of a millisecond; one that takes 10 comes from
// the disk (40-120 ms behind heavy writeback, as measured). A stream loads
// at most maxLoads blocks at once, and a peer's streams together at most
// maxLoads-1 more than one each, so blocks that all come from the disk are
// read with a queue the disk can work on, and the memory they hold is
// bounded.
const (
	slowLoad = 10 * time.Millisecond
	maxLoads = 4
)

// load answers requests in order, loading blocks ahead of the writer within
// the peer's byte quota; while one is slow to load, the requests behind it
// are answered first (clients accept answers in any order).
func (ss *serverStream) load(out chan<- answer) {
	defer close(out)
	l := &loaders{ss: ss, out: out, slots: ss.q.spills}
	defer l.wg.Wait()
	rd := ss.newSmallReader()
	defer rd.close()
	w := l.newWatch()
	defer w.t.Stop()
	for r := rd.next(); r != nil && l.answer(r, rd, w); r = rd.next() {
	}
}

// loaders are a stream's loader and the spills that stand in for it, and
// for each other, while loads are slow.
type loaders struct {
	ss    *serverStream
	out   chan<- answer
	wg    sync.WaitGroup
	slots chan struct{} // one per spill running for the peer
}

// answer answers r unless it was cancelled; false means the stream ended.
func (l *loaders) answer(r *request, rd *smallReader, w *watch) bool {
	if l.ss.isCancelled(r) {
		l.ss.unhold(1, 0)
		return true
	}
	return l.ss.send(l.load(r, rd, w), l.out)
}

// watch is the timer of one loader (the stream's or a spill), reset for
// each load rather than one timer per block: loads are numbered, and a
// spill stands in for load gen until finished reaches it.
type watch struct {
	l        *loaders
	t        *time.Timer
	gen      atomic.Uint64 // the load under way, or the last one
	finished atomic.Uint64 // the last load done
}

func (l *loaders) newWatch() *watch {
	w := &watch{l: l}
	w.t = time.AfterFunc(time.Hour, w.fire)
	w.t.Stop()
	return w
}

// fire runs slowLoad into a load: a spill answers the requests queued
// behind it, if fewer than maxLoads load.
func (w *watch) fire() {
	defer w.l.wg.Done()
	gen := w.gen.Load()
	if w.finished.Load() >= gen {
		return // the load ended as the timer fired
	}
	select {
	case w.l.slots <- struct{}{}:
		w.l.spill(w, gen)
		<-w.l.slots
	default: // as many loads as allowed already
	}
}

// load loads r's answer, through rd if not nil (the stream's loader:
// spills have none); if that takes slowLoad, w's timer starts a spill.
func (l *loaders) load(r *request, rd *smallReader, w *watch) answer {
	gen := w.gen.Add(1)
	l.wg.Add(1) // for the spill; done here if it does not start
	w.t.Reset(slowLoad)
	a := l.ss.loadAnswer(r, rd)
	w.finished.Store(gen)
	if w.t.Stop() {
		l.wg.Done()
	}
	return a
}

// spill answers the requests already queued until the load gen of the
// loader it stands in for (watched by slow) is done, or none is left.
func (l *loaders) spill(slow *watch, gen uint64) {
	w := l.newWatch()
	defer w.t.Stop()
	for slow.finished.Load() < gen {
		if r := l.ss.queued(); r == nil || !l.answer(r, nil, w) {
			return
		}
	}
}

// loadAnswer reads from the store what r asks for, a small block
// through rd if rd is not nil.
func (ss *serverStream) loadAnswer(r *request, rd *smallReader) answer {
	a := answer{req: r, typ: msgDontHave}
	if f := ss.e.cfg.Serves; f != nil && !f(ss.s.RemotePeer()) {
		return a
	}
	if !r.have && rd.read(r, &a) {
		return a
	}
	if r.have {
		if ok, err := ss.e.store.Has(ss.ctx, r.c); err == nil && ok {
			a.typ = msgHave
		}
	} else if parts, release, err := ss.e.store.BorrowParts(ss.ctx, r.c); err == nil {
		a.release = release
		size := 0
		for _, p := range parts {
			size += len(p)
		}
		if size > ss.e.cfg.MaxBlockSize {
			a.done()
		} else {
			a.typ, a.parts, a.size = msgBlock, parts, size
		}
	}
	return a
}

// smallRead is the largest block a stream's loader reads through its
// smallReader, copied out of the store: bigger ones are lent by the store
// without a copy (BorrowParts).
const smallRead = 64 << 10

// smallReader is a stream loader's blockstore.Reader, when the store
// offers one, and its scratch buffer.
type smallReader struct {
	ss      *serverStream
	r       *blockstore.Reader // nil: the store has none
	scratch []byte
}

func (ss *serverStream) newSmallReader() *smallReader {
	rd := &smallReader{ss: ss}
	if s, ok := ss.e.store.(interface{ NewReader() *blockstore.Reader }); ok {
		rd.r = s.NewReader()
	}
	return rd
}

// next is the stream's next request; while it waits for one, the reader
// lets go of its view of the store.
func (rd *smallReader) next() *request {
	if r := rd.ss.queued(); r != nil {
		return r
	}
	if rd.r != nil {
		rd.r.Reset()
	}
	return rd.ss.next()
}

// read reads the block r asks for into a if it is small and in the
// reader's view; false leaves it to the store.
func (rd *smallReader) read(r *request, a *answer) bool {
	if rd == nil || rd.r == nil {
		return false
	}
	var ok bool
	var err error
	rd.scratch, ok, err = rd.r.Append(rd.scratch[:0], r.c, min(smallRead, rd.ss.e.cfg.MaxBlockSize))
	if err != nil || !ok {
		return false // missing from the view, big, or an error BorrowParts reports
	}
	buf := getBuf(len(rd.scratch))
	data := (*buf)[:copy(*buf, rd.scratch)]
	a.typ, a.parts, a.size = msgBlock, [][]byte{data}, len(data)
	a.release = func() { putBuf(buf) }
	return true
}

func (rd *smallReader) close() {
	if rd.r != nil {
		rd.r.Close()
	}
}

// send hands a to the writer once the peer's byte quota has room for it;
// false means the stream ended first.
func (ss *serverStream) send(a answer, out chan<- answer) bool {
	if a.size > 0 {
		n := ss.q.bytes.acquire(int64(a.size), ss.done)
		if n == 0 {
			a.done()
			ss.unhold(1, 0)
			return false
		}
		ss.hold(0, n)
	}
	select {
	case out <- a:
		return true
	case <-ss.done:
		a.done()
		ss.unhold(1, int64(min(a.size, ss.e.cfg.MaxBufferedBytes)))
		return false
	}
}

// flushDelay is how long the writer holds written answers back for more
// while the stream owes answers that the loader is loading: small blocks
// load one after the other in a few microseconds each, and flushing each
// on its own costs a stream frame, a TLS record and a system call per
// block (most of a provider's CPU with 1 KiB blocks). A block that is
// slow to load holds the ones before it back for this long at most.
const flushDelay = time.Millisecond

// write sends answers as they come, flushing whenever it would wait for
// one and none is owed, or flushDelay has passed. When the loader is done
// it closes the stream.
func (ss *serverStream) write(in <-chan answer) {
	bw := bufio.NewWriterSize(deadlineWriter{ss.s, ss.e.cfg.WriteTimeout}, 64<<10)
	t := time.NewTimer(flushDelay)
	t.Stop()
	var hdr []byte
	var err error
	for {
		a, ok, ferr := ss.nextAnswer(in, bw, t)
		if !ok {
			break
		}
		if err == nil {
			err = ferr
		}
		held := int64(min(a.size, ss.e.cfg.MaxBufferedBytes))
		if err == nil && !(a.typ == msgBlock && ss.isCancelled(a.req)) {
			if a.typ == msgBlock {
				hdr = appendBlockHeader(hdr[:0], a.req.c, a.size)
				_, err = bw.Write(hdr)
				for _, p := range a.parts {
					if err == nil {
						_, err = bw.Write(p)
					}
				}
				if err == nil {
					ss.served(a.size)
				}
			} else {
				hdr = appendMessage(hdr[:0], a.typ, a.req.c)
				_, err = bw.Write(hdr)
			}
		}
		if err != nil {
			ss.fail(fmt.Errorf("write: %w", err))
		}
		a.done() // written (or dropped): bufio holds no reference to it
		ss.mu.Lock()
		if ss.byCID[a.req.c] == a.req {
			delete(ss.byCID, a.req.c)
		}
		ss.mu.Unlock()
		ss.unhold(1, held)
	}
	if err != nil {
		return
	}
	ss.mu.Lock()
	failed := ss.failed
	ss.mu.Unlock()
	if failed {
		return
	}
	if err := bw.Flush(); err != nil {
		ss.fail(fmt.Errorf("write: %w", err))
		return
	}
	ss.s.Close()
	ss.fail(nil)
}

// nextAnswer returns the next answer of in (false once in is closed),
// flushing bw first when it would wait: at once if the stream owes no
// more answers, else after flushDelay (t is the writer's timer, stopped).
// ferr is the error of that flush.
func (ss *serverStream) nextAnswer(in <-chan answer, bw *bufio.Writer, t *time.Timer) (a answer, ok bool, ferr error) {
	select {
	case a, ok = <-in:
		return a, ok, nil
	default:
	}
	if bw.Buffered() > 0 && ss.owes() {
		t.Reset(flushDelay)
		select {
		case a, ok = <-in:
			t.Stop()
			return a, ok, nil
		case <-t.C:
		}
	}
	if bw.Buffered() > 0 && !ss.isFailed() {
		ferr = bw.Flush()
	}
	a, ok = <-in
	return a, ok, ferr
}

func (ss *serverStream) isFailed() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.failed
}

// served counts a block of n bytes written to the peer.
func (ss *serverStream) served(n int) {
	ss.tc.Sent(traffic.Share, 1, int64(n))
	if ss.e.cfg.OnServed != nil {
		ss.e.cfg.OnServed(n)
	}
}

// deadlineWriter sets a write deadline before every write.
type deadlineWriter struct {
	s share.Stream
	d time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.s.SetWriteDeadline(time.Now().Add(w.d))
	return w.s.Write(p)
}
