package dcutr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/observed"
	"github.com/share-p2p/share/p2p/peer"
)

// Protocol is the DCUtR protocol ID, the same on every network.
const Protocol = "/libp2p/dcutr"

// MaxAttempts is how many punches the initiator tries (the spec's three).
const MaxAttempts = 3

// Outcomes reported to Config.OnOutcome.
const (
	Success       = "success"        // a punch gave a direct connection
	Direct        = "direct"         // a direct connection existed already
	Failed        = "failed"         // every attempt failed (a symmetric NAT, say)
	NoAddrs       = "no_addrs"       // one side has no public address to offer
	ProtocolError = "protocol_error" // the peer broke the protocol or went away
)

// Config configures a Service; the zero value selects the defaults.
type Config struct {
	// Logger receives the outcome of each punch (default: discarded).
	Logger *slog.Logger
	// Allow says which addresses are exchanged and dialled (default:
	// TCP on a public IP, observed.IsPublic): a peer cannot make us dial
	// private or loopback addresses.
	Allow func(ma.Multiaddr) bool
	// DialTimeout bounds the dials of one attempt (default 5 s: the SYN
	// is sent again at 1 s and 3 s).
	DialTimeout time.Duration
	// StreamTimeout bounds the message exchange of one attempt (default
	// 30 s).
	StreamTimeout time.Duration
	// StartTimeout is how long after a relayed connection opens a punch
	// over it is expected to start: WaitDirect gives up on it then
	// (default 10 s; ours start once identify has run, within a round
	// trip or two).
	StartTimeout time.Duration
	// OnOutcome, if set, is told how each punch ended: role is
	// "initiator" or "receiver", outcome one of the constants above, and
	// elapsed the time from the relayed connection's opening to the
	// direct one on Success.
	OnOutcome func(role, outcome string, elapsed time.Duration)
}

// Service answers and initiates hole punches on a host.
type Service struct {
	h      *p2p.Host
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sub    *p2p.Subscription

	mu      sync.Mutex
	running map[peer.ID]bool
	punches map[peer.ID]*punchState // for WaitDirect (wait.go)
	changed chan struct{}           // closed when a punch starts or ends
}

// New registers the protocol on h and starts punching over every relayed
// connection a peer opens to h; streams that wait for a direct connection
// (p2p.Host.DataConn) wait for its punches. Close stops it.
func New(h *p2p.Host, cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Allow == nil {
		cfg.Allow = observed.IsPublic
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.StreamTimeout <= 0 {
		cfg.StreamTimeout = 30 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.OnOutcome == nil {
		cfg.OnOutcome = func(string, string, time.Duration) {}
	}
	s := &Service{h: h, cfg: cfg, running: map[peer.ID]bool{}, sub: h.Subscribe(),
		punches: map[peer.ID]*punchState{}, changed: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetHandler(Protocol, s.serve)
	h.SetDirectWaiter(s)
	s.wg.Add(1)
	go s.watch()
	return s
}

// Close stops the service and waits for its punches.
func (s *Service) Close() {
	if s == nil {
		return
	}
	s.h.RemoveHandler(Protocol)
	s.h.SetDirectWaiter(nil)
	s.cancel()
	s.sub.Close()
	s.wg.Wait()
}

// watch starts a punch on each relayed connection the peer opened, once
// identify says the peer speaks the protocol.
func (s *Service) watch() {
	defer s.wg.Done()
	for e := range s.sub.Events() {
		c := e.Conn
		if e.Kind == p2p.Disconnected {
			s.forget(e.Peer)
		}
		if e.Kind != p2p.Identified || c == nil || !c.Relayed() || c.Direction() != p2p.Inbound {
			continue
		}
		if !s.h.Peerstore().SupportsProtocol(e.Peer, Protocol) || !s.claim(e.Peer) {
			continue
		}
		s.begin(c)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release(e.Peer)
			s.end(c, 0, s.initiate(c), true) // the initiator decides: no more after this
		}()
	}
}

// claim marks a punch to p as running; false if one is.
func (s *Service) claim(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[p] {
		return false
	}
	s.running[p] = true
	return true
}

func (s *Service) release(p peer.ID) {
	s.mu.Lock()
	delete(s.running, p)
	s.mu.Unlock()
}

// ownAddrs are the addresses offered to a peer: the host's confirmed and
// candidate observed addresses (what peers see of its NAT), then its own
// listen addresses, those Allow accepts, at most MaxAddrs. An unconfirmed
// candidate costs the peer one SYN that goes nowhere.
func (s *Service) ownAddrs() []ma.Multiaddr {
	all := s.h.Observed().Confirmed()
	for _, c := range s.h.Observed().Candidates() {
		all = append(all, c.Addr)
	}
	all = append(all, s.h.Addrs()...)
	return s.filter(all)
}

// filter keeps the unique direct addresses Allow accepts, at most
// MaxAddrs.
func (s *Service) filter(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range ma.Unique(addrs) {
		if len(out) == MaxAddrs {
			break
		}
		if !p2p.IsRelayAddr(a) && s.cfg.Allow(a) {
			out = append(out, a)
		}
	}
	return out
}

// initiate runs the initiator's side over relayed connection c and
// returns its outcome ("" if the service closed).
func (s *Service) initiate(c *p2p.Conn) (outcome string) {
	p := c.RemotePeer()
	log := s.cfg.Logger.With("peer", p.ShortString())
	if s.h.DirectConn(p) != nil {
		s.report(log, "initiator", Direct, c, 0)
		return Direct
	}
	own := s.ownAddrs()
	if len(own) == 0 {
		s.report(log, "initiator", NoAddrs, c, 0)
		return NoAddrs
	}
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		addrs, rtt, err := s.exchange(c, own)
		if err != nil {
			log.Debug("hole punch: exchange failed", "attempt", attempt, "err", err)
			s.report(log, "initiator", ProtocolError, c, attempt)
			return ProtocolError
		}
		if len(addrs) == 0 {
			s.report(log, "initiator", NoAddrs, c, attempt)
			return NoAddrs
		}
		// The peer dials when SYNC arrives, half a round trip from now;
		// dialling a little later makes its SYN the first on a path
		// without NAT, where our listener accepts it and we must be the
		// listener in the handshake.
		select {
		case <-time.After(rtt/2 + rtt/4 + time.Millisecond):
		case <-s.ctx.Done():
			return ""
		}
		if s.punch(p, addrs, attempt == MaxAttempts) {
			s.report(log, "initiator", Success, c, attempt)
			return Success
		}
		log.Debug("hole punch: attempt failed", "attempt", attempt, "addrs", addrs)
	}
	s.report(log, "initiator", Failed, c, MaxAttempts)
	return Failed
}

// exchange opens a stream over c, sends CONNECT with own, reads the
// peer's CONNECT (timing the round trip) and sends SYNC. A new stream per
// attempt: go-libp2p's receiver serves one exchange per stream.
func (s *Service) exchange(c *p2p.Conn, own []ma.Multiaddr) ([]ma.Multiaddr, time.Duration, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StreamTimeout)
	defer cancel()
	st, err := c.NewStream(ctx, Protocol)
	if err != nil {
		return nil, 0, err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(s.cfg.StreamTimeout))
	start := time.Now()
	if err := writeMsg(st, &Msg{Type: Connect, Addrs: own}); err != nil {
		st.Reset()
		return nil, 0, err
	}
	m, err := readMsg(bufio.NewReaderSize(st, 512), Connect)
	if err != nil {
		st.Reset()
		return nil, 0, err
	}
	rtt := time.Since(start)
	if err := writeMsg(st, &Msg{Type: Sync}); err != nil {
		st.Reset()
		return nil, 0, err
	}
	return s.filter(m.Addrs), rtt, nil
}

// punch dials p at addrs and reports whether a direct connection came of
// it, from this dial or the peer's (which our listener may accept while
// our own dial fails), waiting for one until the dial timeout.
func (s *Service) punch(p peer.ID, addrs []ma.Multiaddr, client bool) bool {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
	defer cancel()
	if _, err := s.h.DialHolePunch(ctx, p, addrs, client); err == nil {
		return true
	}
	return s.directSoon(ctx, p)
}

// directSoon waits until p has a direct connection or ctx ends, and
// reports whether it has one. Both sides' dials of a punch may open
// connections, and the loser of their collapse closes while the winner
// is still in its handshake: for that moment there is none.
func (s *Service) directSoon(ctx context.Context, p peer.ID) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.h.DirectConn(p) == nil {
		select {
		case <-t.C:
		case <-ctx.Done():
			return s.h.DirectConn(p) != nil
		}
	}
	return true
}

// serve is the receiver's side: the peer we reached through a relay
// sends CONNECT, gets ours, sends SYNC, and we dial at once. A peer that
// follows the spec to the letter retries on the same stream; go-libp2p's
// (and ours) opens a stream per attempt.
func (s *Service) serve(st *p2p.Stream) {
	c := st.Conn()
	log := s.cfg.Logger.With("peer", c.RemotePeer().ShortString())
	if !c.Relayed() || c.Direction() != p2p.Outbound {
		st.Reset() // only the side that accepted the relayed connection initiates
		return
	}
	s.begin(c)
	outcome, rounds := s.rounds(st, log)
	// After a failed attempt the initiator may try again on a new stream;
	// after anything else it is done.
	s.end(c, rounds, outcome, outcome != Failed)
	s.report(log, "receiver", outcome, c, rounds)
}

// rounds serves the attempts on st and says how they ended.
func (s *Service) rounds(st *p2p.Stream, log *slog.Logger) (outcome string, rounds int) {
	p := st.Conn().RemotePeer()
	br := bufio.NewReaderSize(st, 512)
	for round := 1; round <= MaxAttempts; round++ {
		addrs, done, err := s.answer(st, br)
		if errors.Is(err, io.EOF) && round > 1 {
			break // the peer is done with this stream
		}
		if err != nil {
			st.Reset()
			log.Debug("hole punch: refused", "err", err)
			if errors.Is(err, errNoAddrs) {
				return NoAddrs, round
			}
			return ProtocolError, round
		}
		rounds = round
		ok := s.punch(p, addrs, true)
		done()
		if ok {
			st.Close()
			return Success, round
		}
	}
	st.Close()
	return Failed, rounds
}

var errNoAddrs = errors.New("no public address to dial")

// answer reads CONNECT, answers with ours and reads SYNC. From its answer
// until done is called, the host takes the client's part with a
// connection from the initiator's addresses (Host.ExpectHolePunch): the
// initiator, which dials the moment it sends SYNC (a little later), takes
// the listener's.
func (s *Service) answer(st *p2p.Stream, br *bufio.Reader) (addrs []ma.Multiaddr, done func(), err error) {
	st.SetDeadline(time.Now().Add(s.cfg.StreamTimeout))
	m, err := readMsg(br, Connect)
	if err != nil {
		return nil, nil, err
	}
	addrs = s.filter(m.Addrs)
	own := s.ownAddrs()
	if len(addrs) == 0 || len(own) == 0 {
		return nil, nil, fmt.Errorf("%w (theirs %d, ours %d)", errNoAddrs, len(addrs), len(own))
	}
	done = s.h.ExpectHolePunch(st.Conn().RemotePeer(), addrs)
	if err := writeMsg(st, &Msg{Type: Connect, Addrs: own}); err != nil {
		done()
		return nil, nil, err
	}
	if _, err := readMsg(br, Sync); err != nil {
		done()
		return nil, nil, err
	}
	return addrs, done, nil
}

// report logs and counts an outcome.
func (s *Service) report(log *slog.Logger, role, outcome string, c *p2p.Conn, attempts int) {
	var elapsed time.Duration
	if outcome == Success {
		elapsed = time.Since(c.Opened())
		log.Info("hole punched: direct connection", "role", role, "attempts", attempts, "after", elapsed.Round(time.Millisecond))
	} else {
		log.Debug("hole punch", "role", role, "outcome", outcome, "attempts", attempts)
	}
	s.cfg.OnOutcome(role, outcome, elapsed)
}
