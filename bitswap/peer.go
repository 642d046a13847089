package bitswap

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/traffic"
)

// maxReading is how many inbound Bitswap streams of one peer are read at
// once; more wait their turn, their bytes held by the connection's stream
// windows. kubo keeps one stream for its wantlists and opens one per reply,
// closing it after, so while the node is slow to take blocks many replies
// are open at once, and none may be reset: boxo counts a message as sent
// before writing it and never sends its blocks again (a lost reply
// stalled 1 GiB gets from kubo). What an honest peer sends is bounded by
// our wants; a peer that sends more is cut off as its blocks are read.
const maxReading = 32

// maxStreams is how many Bitswap streams of one peer may be open, read or
// waiting (as many as the host lets a peer open by default); more are
// reset.
const maxStreams = 512

// peerState is what a Bitswap knows of one peer: its streams, the
// outbound stream of Send, and the server's ledger of its wants.
type peerState struct {
	b   *Bitswap
	id  peer.ID
	ctx context.Context // cancelled by shut
	// cancel ends ctx.
	cancel context.CancelFunc
	refs   int // guarded by b.mu

	mu      sync.Mutex
	space   *sync.Cond // signalled when the queue shrinks or the peer shuts
	closed  bool
	streams map[share.Stream]struct{}
	reading chan struct{}    // one per inbound stream being read
	inProto string           // the protocol of the peer's last inbound stream
	tc      *traffic.Counter // the peer's, for the blocks served
	ledger

	outMu sync.Mutex
	out   *outStream
}

func newPeerState(b *Bitswap, id peer.ID) *peerState {
	ctx, cancel := context.WithCancel(context.Background())
	ps := &peerState{
		b: b, id: id, ctx: ctx, cancel: cancel, tc: b.cfg.Traffic.Peer(id),
		streams: make(map[share.Stream]struct{}),
		reading: make(chan struct{}, maxReading),
		ledger:  ledger{wants: make(map[cid.Cid]*want)},
	}
	ps.space = sync.NewCond(&ps.mu)
	return ps
}

// track records s as one of the peer's streams (of proto, if inbound);
// false if the peer shut or has too many.
func (ps *peerState) track(s share.Stream, proto string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed || len(ps.streams) >= maxStreams {
		return false
	}
	ps.streams[s] = struct{}{}
	if proto != "" {
		ps.inProto = proto
	}
	return true
}

// readTurn waits until fewer than maxReading inbound streams of the peer are
// being read; false if the peer shut meanwhile. endTurn ends the turn.
func (ps *peerState) readTurn() bool {
	select {
	case ps.reading <- struct{}{}:
		return true
	case <-ps.ctx.Done():
		return false
	}
}

func (ps *peerState) endTurn() { <-ps.reading }

func (ps *peerState) untrack(s share.Stream) {
	ps.mu.Lock()
	delete(ps.streams, s)
	ps.mu.Unlock()
}

// shut resets the peer's streams and drops its ledger; a waiting reader
// and the sender stop.
func (ps *peerState) shut() {
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return
	}
	ps.closed = true
	streams := make([]share.Stream, 0, len(ps.streams))
	for s := range ps.streams {
		streams = append(streams, s)
	}
	ps.ledger.clear()
	ps.space.Broadcast()
	ps.mu.Unlock()
	ps.cancel()
	for _, s := range streams {
		s.Reset()
	}
}

// read reads messages from s until it ends and dispatches them. An
// inbound stream idle for IdleTimeout ends (nil); the outbound one only
// ends when the peer closes or resets it. Bad messages are errors wrapping
// ErrBadMessage.
func (ps *peerState) read(s share.Stream, outbound bool) error {
	cfg := &ps.b.cfg
	br := bufio.NewReaderSize(s, 4<<10)
	var buf []byte
	for {
		s.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF || (isTimeout(err) && !outbound) {
				return nil
			}
			if isTimeout(err) {
				continue
			}
			return err
		}
		s.SetReadDeadline(time.Now().Add(cfg.ReadTimeout))
		body, err := readMessage(br, buf)
		if err != nil {
			return err
		}
		m, err := Unmarshal(body)
		if err != nil {
			return err
		}
		if err := ps.b.dispatch(ps, m); err != nil {
			return err
		}
		buf = nil
		if len(m.Blocks)+len(m.Presences) == 0 {
			buf = body[:0] // nothing of it was handed out
		}
	}
}

// readMessage reads one length-prefixed message into buf. The buffer
// grows as bytes arrive, so a peer that announces a large message and
// sends little holds little memory.
func readMessage(br *bufio.Reader, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF || isTimeout(err) || errors.Is(err, os.ErrClosed) {
			return nil, fmt.Errorf("message length: %w", noEOF(err))
		}
		return nil, fmt.Errorf("%w: message length: %v", ErrBadMessage, err)
	}
	if n > MaxMessageSize {
		return nil, fmt.Errorf("%w: message of %d bytes, more than %d", ErrBadMessage, n, MaxMessageSize)
	}
	buf = buf[:0]
	for len(buf) < int(n) {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(int(n)-len(buf), max(len(buf), 64<<10)))
		}
		k, err := br.Read(buf[len(buf):min(cap(buf), int(n))])
		buf = buf[:len(buf)+k]
		if err != nil && len(buf) < int(n) {
			return nil, fmt.Errorf("message body: %w", noEOF(err))
		}
	}
	return buf, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// outStream is the peer's outbound stream: what Send and the server write
// to, one message at a time.
type outStream struct {
	s       share.Stream
	proto   string
	bw      *bufio.Writer
	scratch []byte
	dead    atomic.Bool // its reader saw it end
}

// send writes m on the outbound stream, opening it if there is none or
// it died, and reopening it once if the write fails.
func (ps *peerState) send(ctx context.Context, m *Message) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(ps.ctx, cancel)()
	ps.outMu.Lock()
	defer ps.outMu.Unlock()
	var err error
	for range 2 {
		if ps.out != nil && ps.out.dead.Load() {
			ps.out.s.Reset()
			ps.out = nil
		}
		if ps.out == nil {
			if ps.out, err = ps.open(ctx); err != nil {
				return err
			}
		}
		if err = ps.out.write(ctx, m); err == nil {
			return nil
		}
		ps.out.s.Reset()
		ps.out = nil
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return err
}

// open opens the outbound stream in the newest protocol the peer speaks
// and starts reading it: the peer writes nothing on it, but the read
// sees it end (and a refused protocol).
func (ps *peerState) open(ctx context.Context) (*outStream, error) {
	proto := ps.protocol()
	s, err := ps.b.host.NewStream(ctx, ps.id, proto)
	if err != nil {
		return nil, err
	}
	if !ps.b.hold(ps) {
		s.Reset()
		return nil, ErrClosed
	}
	if !ps.track(s, "") {
		s.Reset()
		ps.b.release(ps)
		return nil, fmt.Errorf("%w: %s", ErrCutOff, ps.id)
	}
	out := &outStream{s: s, proto: proto, bw: bufio.NewWriterSize(s, 64<<10)}
	go func() {
		defer ps.b.release(ps)
		defer ps.untrack(s)
		err := ps.read(s, true)
		out.dead.Store(true)
		if err != nil {
			ps.b.fail(ps, s, err)
			return
		}
		s.Reset()
	}()
	return out, nil
}

// protocol is the newest Bitswap protocol the peer is known to speak: as
// identify says, else as its own streams say, else 1.2.0.
func (ps *peerState) protocol() string {
	if h, ok := ps.b.host.(interface{ SupportsProtocol(peer.ID, string) bool }); ok {
		for _, proto := range Protocols {
			if h.SupportsProtocol(ps.id, proto) {
				return proto
			}
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.inProto != "" {
		return ps.inProto
	}
	return Protocol120
}

// Timeouts of a write, as boxo's: 2 s plus the time the message takes at
// 100 kbit/s, within 10 s to 2 minutes.
const (
	minSendTimeout = 10 * time.Second
	maxSendTimeout = 2 * time.Minute
	sendLatency    = 2 * time.Second
	minSendRate    = 100_000 / 8 // bytes per second
)

func sendTimeout(size int) time.Duration {
	d := sendLatency + time.Duration(int64(size)*int64(time.Second)/minSendRate)
	return min(max(d, minSendTimeout), maxSendTimeout)
}

// write writes m, the blocks' data straight from where it lies.
func (o *outStream) write(ctx context.Context, m *Message) error {
	deadline := time.Now().Add(sendTimeout(size(m, o.proto)))
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	o.s.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { o.s.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	b := appendHead(o.scratch[:0], m, o.proto)
	for _, blk := range m.Blocks {
		b = appendBlockHead(b, blk, o.proto)
		if _, err := o.bw.Write(b); err != nil {
			return err
		}
		if _, err := o.bw.Write(blk.Data); err != nil {
			return err
		}
		b = b[:0]
	}
	if _, err := o.bw.Write(b); err != nil {
		return err
	}
	o.scratch = b[:0]
	return o.bw.Flush()
}
