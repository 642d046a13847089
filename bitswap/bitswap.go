package bitswap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/traffic"
)

// Config tunes a Bitswap. Zero fields take the defaults given.
type Config struct {
	// Store is what the server serves (Has for want-haves, Get for
	// want-blocks).
	Store share.Getter
	// MaxRequests is how many wants of one peer the server queues before
	// it stops reading that peer. Default 256, as the exchange's.
	MaxRequests int
	// MaxBufferedBytes bounds the bytes of blocks the server loads for one
	// peer and has not yet written (one block more at most: a block's size
	// is known once it is loaded). Default 8 MiB, as the exchange's.
	MaxBufferedBytes int
	// MaxWantlist is how many wantlist entries of one peer the server
	// keeps; a peer that wants more is cut off. Default 4096 (boxo keeps
	// 1024 and drops the rest; kubo's clients stay well below).
	MaxWantlist int
	// IdleTimeout closes an inbound stream on which nothing arrives for
	// that long (the peer reopens one when it has wants). Default 5 minutes.
	IdleTimeout time.Duration
	// ReadTimeout bounds the reading of a message that has begun.
	// Default 20 s.
	ReadTimeout time.Duration
	// CutOffTime is how long a cut-off peer is ignored. Default 10 minutes.
	CutOffTime time.Duration
	Logger     *slog.Logger
	// OnBadPeer, if not nil, is called (without blocking) when a peer is
	// cut off for sending a malformed or oversized message or flooding
	// its wantlist. The node should disconnect it.
	OnBadPeer func(p peer.ID, err error)
	// Served, if not nil, is called after each message the server wrote,
	// with its blocks and their bytes (metrics); it must not block.
	Served func(blocks int, bytes int64)
	// Traffic, if not nil, counts the blocks the server sends each peer.
	// (The blocks a client receives are counted by the exchange's
	// sessions, which Bitswap's client side feeds.)
	Traffic *traffic.Table
	// Serves, if not nil, says whether the server serves p: the wants of
	// a peer it does not serve are ignored (share send serves only the
	// receiver that proved the code). It must not block.
	Serves func(p peer.ID) bool
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxRequests, 256)
	def(&c.MaxBufferedBytes, 8<<20)
	def(&c.MaxWantlist, 4096)
	defDur(&c.IdleTimeout, 5*time.Minute)
	defDur(&c.ReadTimeout, 20*time.Second)
	defDur(&c.CutOffTime, 10*time.Minute)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Errors of Send.
var (
	ErrClosed = errors.New("bitswap closed")
	ErrCutOff = errors.New("peer is cut off")
	// ErrFlood is what a peer that wants more than MaxWantlist blocks is
	// cut off with.
	ErrFlood = errors.New("bitswap wantlist flood")
)

// Bitswap serves a store to Bitswap peers and carries the messages of a
// client. It is safe for concurrent use.
type Bitswap struct {
	host share.StreamHost
	cfg  Config
	log  *slog.Logger
	recv atomic.Pointer[func(peer.ID, *Message)]

	mu     sync.Mutex
	peers  map[peer.ID]*peerState
	banned map[peer.ID]time.Time // cut-off peers, until when
	closed bool
	wg     sync.WaitGroup // one per acquire: stream readers, senders, Sends
}

// New registers the handlers of Protocols on h and serves cfg.Store.
func New(h share.StreamHost, cfg Config) *Bitswap {
	cfg = cfg.withDefaults()
	b := &Bitswap{
		host:   h,
		cfg:    cfg,
		log:    cfg.Logger,
		peers:  make(map[peer.ID]*peerState),
		banned: make(map[peer.ID]time.Time),
	}
	for _, proto := range Protocols {
		h.SetHandler(proto, func(s share.Stream) { b.serveStream(s, proto) })
	}
	return b
}

// SetReceiver sets the function that gets the blocks and presences arriving
// from p (the client side; wantlists go to the server, and m.Wants is nil).
// It is called from p's reading goroutine with messages whose memory it
// may keep; it should not block for long, as p's stream waits meanwhile.
func (b *Bitswap) SetReceiver(fn func(p peer.ID, m *Message)) {
	b.recv.Store(&fn)
}

// Close stops serving: it removes the handlers, resets every stream and
// waits for the goroutines.
func (b *Bitswap) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	peers := make([]*peerState, 0, len(b.peers))
	for _, ps := range b.peers {
		peers = append(peers, ps)
	}
	b.mu.Unlock()
	for _, proto := range Protocols {
		b.host.RemoveHandler(proto)
	}
	for _, ps := range peers {
		ps.shut()
	}
	b.wg.Wait()
	return nil
}

// CutOff resets p's streams, forgets its wantlist and ignores p for
// Config.CutOffTime: its streams are reset as they open, Send to it fails.
// It does not call OnBadPeer (the caller knows).
func (b *Bitswap) CutOff(p peer.ID, err error) {
	b.log.Debug("bitswap: cutting off a peer", "peer", p, "err", err)
	now := time.Now()
	b.mu.Lock()
	for q, until := range b.banned {
		if now.After(until) {
			delete(b.banned, q)
		}
	}
	b.banned[p] = now.Add(b.cfg.CutOffTime)
	ps := b.peers[p]
	delete(b.peers, p)
	b.mu.Unlock()
	if ps != nil {
		ps.shut()
	}
}

// badPeer cuts p off for err and tells OnBadPeer.
func (b *Bitswap) badPeer(p peer.ID, err error) {
	b.CutOff(p, err)
	if b.cfg.OnBadPeer != nil {
		b.cfg.OnBadPeer(p, err)
	}
}

// acquire returns p's state, counting one more user of it (a stream, a
// Send, the sender); release undoes it.
func (b *Bitswap) acquire(p peer.ID) (*peerState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if until, ok := b.banned[p]; ok {
		if time.Now().Before(until) {
			return nil, fmt.Errorf("%w: %s", ErrCutOff, p)
		}
		delete(b.banned, p)
	}
	ps := b.peers[p]
	if ps == nil {
		ps = newPeerState(b, p)
		b.peers[p] = ps
	}
	ps.refs++
	b.wg.Add(1) // under mu, after the closed check: Close waits for it
	return ps, nil
}

// hold counts one more user of ps, unless the Bitswap is closed.
func (b *Bitswap) hold(ps *peerState) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	ps.refs++
	b.wg.Add(1)
	return true
}

// release drops a user of ps; the last one forgets the peer (its streams
// are gone: the peer is as good as disconnected, and its wantlist goes
// with it, as boxo's does).
func (b *Bitswap) release(ps *peerState) {
	b.mu.Lock()
	ps.refs--
	last := ps.refs == 0
	if last && b.peers[ps.id] == ps {
		delete(b.peers, ps.id)
	}
	b.mu.Unlock()
	if last {
		ps.shut()
	}
	b.wg.Done()
}

// serveStream reads an inbound stream of proto until it ends.
func (b *Bitswap) serveStream(s share.Stream, proto string) {
	p := s.RemotePeer()
	ps, err := b.acquire(p)
	if err != nil {
		s.Reset()
		return
	}
	defer b.release(ps)
	if !ps.track(s, proto) {
		s.Reset()
		return
	}
	defer ps.untrack(s)
	if !ps.readTurn() {
		s.Reset()
		return
	}
	defer ps.endTurn()
	if err := ps.read(s, false); err != nil {
		b.fail(ps, s, err)
		return
	}
	s.Close()
}

// fail ends stream s of ps after err: a bad message cuts the peer off.
func (b *Bitswap) fail(ps *peerState, s share.Stream, err error) {
	s.Reset()
	if errors.Is(err, ErrBadMessage) || errors.Is(err, ErrFlood) {
		b.log.Warn("bitswap: cutting off a peer that sent a bad message", "peer", ps.id, "err", err)
		b.badPeer(ps.id, err)
		return
	}
	b.log.Debug("bitswap: stream ends", "peer", ps.id, "err", err)
}

// dispatch hands m's wants to the server and the rest to the receiver.
func (b *Bitswap) dispatch(ps *peerState, m *Message) error {
	if f := b.cfg.Serves; f != nil && !f(ps.id) {
		m.Wants, m.Full = nil, false
	}
	if len(m.Wants) > 0 || m.Full {
		if err := ps.want(m); err != nil {
			return err
		}
		m.Wants = nil
	}
	if len(m.Blocks)+len(m.Presences) == 0 {
		return nil
	}
	if fn := b.recv.Load(); fn != nil {
		(*fn)(ps.id, m)
	}
	return nil
}

// Send writes m to p on the outbound stream kept per peer (opened on first
// use with the newest protocol p accepts, reopened once if it died). Safe
// for concurrent use; messages to one peer are written in order.
func (b *Bitswap) Send(ctx context.Context, p peer.ID, m *Message) error {
	ps, err := b.acquire(p)
	if err != nil {
		return err
	}
	defer b.release(ps)
	if err := ps.send(ctx, m); err != nil {
		return fmt.Errorf("bitswap send to %s: %w", p, err)
	}
	return nil
}
