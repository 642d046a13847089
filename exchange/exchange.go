package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/traffic"
)

// Store is the local block store the exchange serves from.
// blockstore.Store and dag.MemStore implement it.
type Store interface {
	Has(ctx context.Context, c cid.Cid) (bool, error)
	// BorrowParts lends the bytes of block c without a copy, in the
	// pieces the store keeps it in (their concatenation is the block),
	// until release is called, once; the server writes them to the peer
	// as they are.
	BorrowParts(ctx context.Context, c cid.Cid) (parts [][]byte, release func(), err error)
}

// Config tunes an Exchange. Zero fields take the defaults given.
type Config struct {
	// MaxRequests is how many requests of one peer the server queues
	// (over all its streams); it reads no more until some are answered.
	// Default 256.
	MaxRequests int
	// MaxBufferedBytes is how many bytes of blocks the server loads for
	// one peer ahead of writing them. Default 8 MiB.
	MaxBufferedBytes int
	// IdleTimeout closes a server stream on which nothing arrives for
	// that long. Default 2 minutes.
	IdleTimeout time.Duration
	// ReadTimeout is how long a client waits for the next frame while it
	// has requests outstanding before it gives up on the peer; also the
	// limit for reading the rest of a frame that has begun. Default 20 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds every write. Default 20 s.
	WriteTimeout time.Duration

	// MinWindow and MaxWindow bound the requests in flight to one
	// provider in a session. Defaults 4 and 256: a window is sized to
	// the provider's measured throughput in blocks, and big blocks reach
	// the memory budget (MaxInFlightBytes) first; small ones need many
	// in flight (1 KiB blocks at 50 000 a second, 64 cover 1.3 ms).
	MinWindow, MaxWindow int
	// StreamsPerPeer is how many streams a session opens to each
	// provider, its requests spread over them (default 4, at most 16).
	// Each stream has its own yamux window, so more of a fast provider's
	// data is under way than one window allows (on loopback, one 2 MiB
	// window leaves the sender waiting for window updates), while the
	// window of every other stream stays small.
	StreamsPerPeer int
	// MaxInFlightBytes bounds the bytes a session has requested and not
	// yet stored, plus the blocks a streaming session holds for its
	// reader. Default 64 MiB.
	MaxInFlightBytes int64
	// MaxBlockSize is the largest block this node sends or accepts; a
	// peer that sends a larger frame is cut off. Default and maximum
	// MaxBlockSize (4 MiB); content chunked larger cannot be exchanged.
	MaxBlockSize int
	// ProgressTimeout ends a session with ErrNoProgress when no block
	// arrives for that long while blocks are missing. Default 30 s.
	ProgressTimeout time.Duration

	// Wire, if not nil, is a second block protocol (Bitswap) for the
	// providers that do not speak the share protocol.
	Wire WantWire
	// Speaks, if not nil, reports whether identify says p speaks proto;
	// without it every provider is asked over the share protocol.
	Speaks func(p peer.ID, proto string) bool

	// OnBadPeer, if not nil, is called (from any goroutine, without
	// blocking) when a peer sends a block that fails verification, a
	// block it was not asked for or a malformed frame. The node should
	// disconnect it; sessions already stop using it.
	OnBadPeer func(p peer.ID, err error)
	// OnServed, if not nil, is called with the size of each block the
	// server sends (for metrics); it must not block.
	OnServed func(size int)
	// Traffic, if not nil, counts the blocks each peer is sent by the
	// server and sends the sessions (first copies), per peer.
	Traffic *traffic.Table
	// Serves, if not nil, says whether the server serves p: a peer it
	// does not serve is answered DONT_HAVE for every block, as if the
	// store were empty (share send serves only the receiver that proved
	// the code). It is asked at every request and must not block.
	Serves func(p peer.ID) bool
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxRequests, 256)
	def(&c.MaxBufferedBytes, 8<<20)
	defDur(&c.IdleTimeout, 2*time.Minute)
	defDur(&c.ReadTimeout, 20*time.Second)
	defDur(&c.WriteTimeout, 20*time.Second)
	def(&c.MinWindow, 4)
	def(&c.MaxWindow, 256)
	def(&c.StreamsPerPeer, 4)
	if c.MaxInFlightBytes == 0 {
		c.MaxInFlightBytes = 64 << 20
	}
	defDur(&c.ProgressTimeout, 30*time.Second)
	def(&c.MaxBlockSize, MaxBlockSize)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.MaxRequests < 1:
		return c, fmt.Errorf("exchange config: MaxRequests %d < 1", c.MaxRequests)
	case c.MaxBufferedBytes < 1:
		return c, fmt.Errorf("exchange config: MaxBufferedBytes %d < 1", c.MaxBufferedBytes)
	case c.IdleTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.ProgressTimeout < 0:
		return c, errors.New("exchange config: negative timeout")
	case c.MinWindow < 1:
		return c, fmt.Errorf("exchange config: MinWindow %d < 1", c.MinWindow)
	case c.StreamsPerPeer < 1 || c.StreamsPerPeer > 16:
		return c, fmt.Errorf("exchange config: StreamsPerPeer %d not in 1..16", c.StreamsPerPeer)
	case c.MaxWindow < c.MinWindow:
		return c, fmt.Errorf("exchange config: MaxWindow %d < MinWindow %d", c.MaxWindow, c.MinWindow)
	case c.MaxBlockSize < 1 || c.MaxBlockSize > MaxBlockSize:
		return c, fmt.Errorf("exchange config: MaxBlockSize %d not in 1..%d", c.MaxBlockSize, MaxBlockSize)
	case c.MaxInFlightBytes < 1:
		return c, fmt.Errorf("exchange config: MaxInFlightBytes %d < 1", c.MaxInFlightBytes)
	}
	return c, nil
}

// Exchange serves the blocks of a local store to peers and fetches DAGs
// from them. It is safe for concurrent use.
type Exchange struct {
	host  share.StreamHost
	proto string
	store Store
	cfg   Config
	log   *slog.Logger

	mu    sync.Mutex
	peers map[peer.ID]*peerQuota // server side, peers with open streams
	// The most any peer held of its quotas, for tests.
	peakReqs, peakBytes int64
	closed              bool
	done                chan struct{}

	wmu  sync.Mutex
	wire map[peer.ID]*wirePeer // the want wire's peers (client side)
	wg   sync.WaitGroup        // server streams
}

// New returns an Exchange that serves store on proto (for example
// "/share/blocks/1.0.0") through h and fetches from h's peers.
func New(h share.StreamHost, proto string, store Store, cfg Config) (*Exchange, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Exchange{
		host:  h,
		proto: proto,
		store: store,
		cfg:   cfg,
		log:   cfg.Logger,
		peers: make(map[peer.ID]*peerQuota),
		done:  make(chan struct{}),
		wire:  make(map[peer.ID]*wirePeer),
	}
	h.SetHandler(proto, e.serve)
	return e, nil
}

// Close stops serving: it resets the streams being served and waits for
// their goroutines. Sessions are ended by their own contexts.
func (e *Exchange) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.done)
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

// Has asks p which of cids it has, in one round trip on a stream of its
// own. The answer has one entry per CID.
func (e *Exchange) Has(ctx context.Context, p peer.ID, cids []cid.Cid) ([]bool, error) {
	if e.useWire(p) {
		return e.hasWire(ctx, p, cids)
	}
	have, err := e.hasShare(ctx, p, cids)
	if err != nil && errors.Is(err, mss.ErrNotSupported) && e.awaitWire(ctx, p) {
		// Asked before identify said p speaks only the want wire (a
		// kubo peer that just connected).
		return e.hasWire(ctx, p, cids)
	}
	return have, err
}

// awaitWire waits, briefly, for identify to say that p speaks the want
// wire, and reports whether it did.
func (e *Exchange) awaitWire(ctx context.Context, p peer.ID) bool {
	if e.cfg.Wire == nil {
		return false
	}
	deadline := time.Now().Add(identifyWait)
	for !e.useWire(p) {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// identifyWait is how long a peer that refused the share protocol has to
// be described by identify (it takes a round trip after the connection).
const identifyWait = 2 * time.Second

func (e *Exchange) hasShare(ctx context.Context, p peer.ID, cids []cid.Cid) ([]bool, error) {
	s, err := e.host.NewStream(ctx, p, e.proto)
	if err != nil {
		return nil, fmt.Errorf("ask %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	have, err := e.ask(s, cids)
	if err != nil {
		s.Reset()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("ask %s: %w", p, err)
	}
	s.Close()
	return have, nil
}

func (e *Exchange) ask(s share.Stream, cids []cid.Cid) ([]bool, error) {
	index := make(map[cid.Cid][]int, len(cids))
	var out []byte
	for i, c := range cids {
		if len(index[c]) == 0 {
			out = appendMessage(out, msgWantHave, c)
		}
		index[c] = append(index[c], i)
	}
	s.SetWriteDeadline(time.Now().Add(e.cfg.WriteTimeout))
	if _, err := s.Write(out); err != nil {
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, err
	}
	have := make([]bool, len(cids))
	fr := newFrameReaderMax(s, e.cfg.MaxBlockSize)
	for len(index) > 0 {
		s.SetReadDeadline(time.Now().Add(e.cfg.ReadTimeout))
		m, buf, err := fr.next()
		putBuf(buf)
		if err != nil {
			return nil, noEOF(err)
		}
		is, ok := index[m.cid]
		if !ok || (m.typ != msgHave && m.typ != msgDontHave) {
			e.badPeer(s.RemotePeer(), fmt.Errorf("%w: unrequested %s %s", ErrProtocol, m.typ, m.cid))
			return nil, fmt.Errorf("%w: unrequested %s", ErrProtocol, m.typ)
		}
		for _, i := range is {
			have[i] = m.typ == msgHave
		}
		delete(index, m.cid)
	}
	return have, nil
}

func (e *Exchange) badPeer(p peer.ID, err error) {
	e.log.Debug("bad peer", "peer", p, "err", err)
	if e.cfg.OnBadPeer != nil {
		e.cfg.OnBadPeer(p, err)
	}
}
