package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	yamux "github.com/libp2p/go-yamux/v4"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/peer"
)

// Direction tells who opened a connection or stream.
type Direction int

const (
	// Inbound: the remote opened it.
	Inbound Direction = iota + 1
	// Outbound: this host opened it.
	Outbound
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "inbound"
	case Outbound:
		return "outbound"
	}
	return "unknown"
}

// yamux tuning. maxStreamWindow is the ceiling of yamux's window
// auto-tuning; maxMessage is the largest frame a stream writes at once
// (bigger frames mean fewer hand-offs to the session's writer goroutine).
const (
	maxStreamWindow = 16 << 20
	maxMessage      = 256 << 10
	// muxMemory bounds the window growth of all streams of one connection
	// beyond their initial windows.
	muxMemory = 64 << 20
)

// Conn is an authenticated, multiplexed connection to a peer.
type Conn struct {
	h      *Host
	sess   *yamux.Session
	raw    net.Conn // the transport connection under TLS
	remote peer.ID
	laddr  ma.Multiaddr
	raddr  ma.Multiaddr
	dir    Direction
	opened time.Time
	log    *slog.Logger

	inStreams  atomic.Int32 // inbound streams being served
	streams    atomic.Int32 // all open streams
	lastActive atomic.Int64 // unix nanos of the last stream open or close

	closeOnce  sync.Once
	identified chan struct{}
	// identifyErr is why identify failed, set before identified closes.
	identifyErr error
	// closedLocally: this end closed the connection (not the peer).
	closedLocally atomic.Bool
}

// RemotePeer returns the PeerID the remote proved in the handshake.
func (c *Conn) RemotePeer() peer.ID { return c.remote }

// LocalMultiaddr returns the local transport address.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.laddr }

// RemoteMultiaddr returns the remote transport address (without /p2p).
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.raddr }

// Direction tells whether this host dialled the connection.
func (c *Conn) Direction() Direction { return c.dir }

// Opened returns when the connection was established.
func (c *Conn) Opened() time.Time { return c.opened }

// NumStreams returns the number of open streams.
func (c *Conn) NumStreams() int { return int(c.streams.Load()) }

// IsClosed reports whether the connection has ended.
func (c *Conn) IsClosed() bool { return c.sess.IsClosed() }

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.sess.CloseChan() }

// Identified is closed once identify has run on the connection (whether
// it succeeded or not).
func (c *Conn) Identified() <-chan struct{} { return c.identified }

// Close ends the connection and all its streams.
func (c *Conn) Close() error {
	c.closeWithReason("closed locally")
	return nil
}

func (c *Conn) closeWithReason(reason string) {
	c.closeOnce.Do(func() {
		c.closedLocally.Store(true)
		c.log.Debug("closing connection", "reason", reason)
		c.sess.Close()
	})
}

func (c *Conn) touch() { c.lastActive.Store(time.Now().UnixNano()) }

func (c *Conn) String() string {
	return fmt.Sprintf("<Conn %s %s %s>", c.dir, c.remote.ShortString(), c.raddr)
}

// NewStream opens a stream on this connection and negotiates one of
// protos. With a single protocol, negotiation is optimistic: NewStream
// returns at once and a refusal surfaces as ErrNotSupported on the first
// Read.
func (c *Conn) NewStream(ctx context.Context, protos ...string) (*Stream, error) {
	if len(protos) == 0 {
		return nil, errors.New("new stream: no protocol")
	}
	ys, err := c.sess.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", c.remote.ShortString(), err)
	}
	s := c.newStream(ys, Outbound)
	if len(protos) == 1 {
		lz, err := mss.SelectLazy(ys, protos[0])
		if err != nil {
			s.Reset()
			return nil, err
		}
		s.lazy = lz
		s.setProto(protos[0])
		return s, nil
	}
	stop := deadlineFromContext(ctx, ys, c.h.cfg.NegotiationTimeout)
	proto, err := mss.Select(ys, protos...)
	stop()
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("negotiate %v with %s: %w", protos, c.remote.ShortString(), err)
	}
	s.setProto(proto)
	return s, nil
}

// deadlineFromContext sets a deadline on d from ctx (or fallback when ctx
// has none) and makes cancellation of ctx expire it; stop clears both.
func deadlineFromContext(ctx context.Context, d interface{ SetDeadline(time.Time) error }, fallback time.Duration) (stop func()) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(fallback)
	}
	d.SetDeadline(dl)
	cancel := context.AfterFunc(ctx, func() { d.SetDeadline(time.Unix(1, 0)) })
	return func() {
		cancel()
		d.SetDeadline(time.Time{})
	}
}

func (c *Conn) newStream(ys *yamux.Stream, dir Direction) *Stream {
	c.streams.Add(1)
	if dir == Inbound {
		c.inStreams.Add(1)
	}
	c.touch()
	return &Stream{ys: ys, conn: c, dir: dir}
}

// acceptStreams serves inbound streams until the session ends.
func (c *Conn) acceptStreams() {
	defer c.h.wg.Done()
	for {
		ys, err := c.sess.AcceptStream()
		if err != nil {
			return
		}
		s := c.newStream(ys, Inbound)
		if int(c.inStreams.Load()) > c.h.cfg.Limits.MaxStreamsPerPeer {
			c.log.Debug("resetting stream", "reason", "too many inbound streams", "limit", c.h.cfg.Limits.MaxStreamsPerPeer)
			s.Reset()
			continue
		}
		c.h.wg.Add(1)
		go c.serveStream(s)
	}
}

func (c *Conn) serveStream(s *Stream) {
	defer c.h.wg.Done()
	h := c.h
	s.ys.SetDeadline(time.Now().Add(h.cfg.NegotiationTimeout))
	var handler StreamHandler
	proto, err := mss.Negotiate(s.ys, func(p string) bool {
		handler = h.handler(p)
		return handler != nil
	}, h.Protocols)
	if err != nil {
		c.log.Debug("resetting stream", "reason", "protocol negotiation failed", "err", err)
		s.Reset()
		return
	}
	s.ys.SetDeadline(time.Time{})
	s.setProto(proto)
	handler(s)
	s.release(true)
}

// Stream is a bidirectional byte stream to a peer, speaking one protocol.
type Stream struct {
	ys    *yamux.Stream
	conn  *Conn
	dir   Direction
	proto string
	lazy  *mss.LazyConn // optimistic negotiation in flight; nil once answered or if none
	// negotiated is set once the lazy negotiation answer was read, so
	// reads stop going through lazy.
	negotiated atomic.Bool
	released   atomic.Bool
	// in and out count payload bytes for Config.StreamMeter (nil: none).
	in, out func(int)
}

// setProto records the stream's protocol and attaches its byte meters.
func (s *Stream) setProto(p string) {
	s.proto = p
	if m := s.conn.h.cfg.StreamMeter; m != nil {
		s.in, s.out = m(p)
	}
}

// Protocol returns the negotiated (or, for an optimistic stream, the
// proposed) protocol.
func (s *Stream) Protocol() string { return s.proto }

// Conn returns the connection the stream runs on.
func (s *Stream) Conn() *Conn { return s.conn }

// RemotePeer returns the peer at the other end (share.Stream).
func (s *Stream) RemotePeer() peer.ID { return s.conn.remote }

// Direction tells whether this host opened the stream.
func (s *Stream) Direction() Direction { return s.dir }

// Read reads from the stream. On an optimistic stream the first Read checks
// the peer's answer and fails with ErrNotSupported if it refused.
func (s *Stream) Read(p []byte) (n int, err error) {
	if s.lazy != nil && !s.negotiated.Load() {
		n, err = s.lazy.Read(p)
		if err == nil {
			s.negotiated.Store(true)
		}
	} else {
		n, err = s.ys.Read(p)
	}
	if s.in != nil && n > 0 {
		s.in(n)
	}
	return n, err
}

// Write writes to the stream; the first Write of an optimistic stream
// carries the protocol proposal in the same frame.
func (s *Stream) Write(p []byte) (n int, err error) {
	if s.lazy != nil {
		n, err = s.lazy.Write(p)
	} else {
		n, err = s.ys.Write(p)
	}
	if s.out != nil && n > 0 {
		s.out(n)
	}
	return n, err
}

// Flush sends a pending optimistic proposal now. A stream opened to be
// written later must: the peer resets a stream whose protocol it has not
// read within its negotiation timeout (10 s here and in go-libp2p).
func (s *Stream) Flush() error { return s.flush() }

// flush sends a pending optimistic proposal.
func (s *Stream) flush() error {
	if s.lazy != nil {
		return s.lazy.Flush()
	}
	return nil
}

// CloseWrite ends the writing half: the peer reads EOF.
func (s *Stream) CloseWrite() error {
	err := s.flush()
	if cerr := s.ys.CloseWrite(); err == nil {
		err = cerr
	}
	return err
}

// CloseRead tells the peer we will read no more.
func (s *Stream) CloseRead() error { return s.ys.CloseRead() }

// Close closes both halves gracefully.
func (s *Stream) Close() error {
	err := s.flush()
	if cerr := s.ys.Close(); err == nil {
		err = cerr
	}
	s.release(false)
	return err
}

// Reset aborts the stream in both directions.
func (s *Stream) Reset() error {
	err := s.ys.Reset()
	s.release(false)
	return err
}

// release updates the connection's counters once; with reset it resets a
// stream the handler left open.
func (s *Stream) release(reset bool) {
	if !s.released.CompareAndSwap(false, true) {
		return
	}
	if reset {
		s.ys.Reset()
	}
	s.conn.streams.Add(-1)
	if s.dir == Inbound {
		s.conn.inStreams.Add(-1)
	}
	s.conn.touch()
}

// SetDeadline sets the read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error { return s.ys.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.ys.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.ys.SetWriteDeadline(t) }

var _ io.ReadWriteCloser = (*Stream)(nil)

// yamuxConfig returns the session configuration for cfg.
func yamuxConfig(cfg *Config, log *slog.Logger) *yamux.Config {
	yc := yamux.DefaultConfig()
	yc.AcceptBacklog = cfg.Limits.MaxStreamsPerPeer
	yc.MaxIncomingStreams = uint32(cfg.Limits.MaxStreamsPerPeer)
	yc.EnableKeepAlive = true
	yc.KeepAliveInterval = cfg.KeepAlive
	yc.ConnectionWriteTimeout = cfg.HandshakeTimeout
	yc.InitialStreamWindowSize = cfg.StreamWindow
	yc.MaxStreamWindowSize = maxStreamWindow
	yc.ReadBufSize = cfg.ReadBuffer
	yc.MaxMessageSize = maxMessage
	yc.LogOutput = slogWriter{log}
	return yc
}

// slogWriter turns yamux's log lines into debug records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("yamux", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}

// muxMem caps the window growth of a session's streams.
type muxMem struct{ used atomic.Int64 }

func (m *muxMem) newSpan() (yamux.MemoryManager, error) { return &memSpan{m: m}, nil }

type memSpan struct {
	m *muxMem
	n atomic.Int64
}

var errMuxMemory = errors.New("connection memory limit")

func (s *memSpan) ReserveMemory(size int, prio uint8) error {
	// The initial window (prio 255) must succeed or yamux drops the session.
	if prio < 255 && s.m.used.Load()+int64(size) > muxMemory {
		return errMuxMemory
	}
	s.m.used.Add(int64(size))
	s.n.Add(int64(size))
	return nil
}

func (s *memSpan) ReleaseMemory(size int) {
	s.m.used.Add(-int64(size))
	s.n.Add(-int64(size))
}

func (s *memSpan) Done() {
	s.m.used.Add(-s.n.Swap(0))
}

// netConnOf lets yamux and TLS run over a connection whose reads and
// writes go through a wrapper (a lazy negotiation).
type wrappedConn struct {
	net.Conn
	rw io.ReadWriter
}

func (w wrappedConn) Read(p []byte) (int, error)  { return w.rw.Read(p) }
func (w wrappedConn) Write(p []byte) (int, error) { return w.rw.Write(p) }
