package dcutr

import (
	"context"
	"time"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// nextAttemptWait is how long a receiver waits, after an attempt failed,
// for the initiator's next one (a new stream, as go-libp2p's initiator
// opens): both sides' dials time out together, so it comes within a round
// trip.
const nextAttemptWait = 3 * time.Second

// punchState is what a Service knows of the hole punch with a peer, for
// WaitDirect: the side that waits for a direct connection (a fetch over a
// limited relay) learns when none will come, not after a timeout.
type punchState struct {
	conn     *p2p.Conn // the relayed connection it runs over
	running  int       // exchanges (initiator: the whole punch) under way
	attempts int       // attempts over
	final    bool      // no more will come: success, the initiator's end, an error
	success  bool      // the last one gave a direct connection
	idle     time.Time // when the last exchange ended
}

// begin records that an exchange over relayed connection c starts.
func (s *Service) begin(c *p2p.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := c.RemotePeer()
	st := s.punches[p]
	if st == nil || st.conn != c {
		st = &punchState{conn: c}
		s.punches[p] = st
	}
	st.running++
	s.changedLocked()
}

// end records that an exchange over c ended after attempts attempts
// with outcome; final says no other will follow.
func (s *Service) end(c *p2p.Conn, attempts int, outcome string, final bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.punches[c.RemotePeer()]
	if st == nil || st.conn != c {
		return
	}
	st.running--
	st.attempts += attempts
	st.final = st.final || final || st.attempts >= MaxAttempts
	st.success = outcome == Success || outcome == Direct
	st.idle = time.Now()
	s.changedLocked()
}

// forget drops what is known of p's punches (p disconnected).
func (s *Service) forget(p peer.ID) {
	s.mu.Lock()
	delete(s.punches, p)
	s.mu.Unlock()
}

// changedLocked wakes the WaitDirect calls.
func (s *Service) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// verdict says whether a punch may still come of relayed connection c:
// over means none will; otherwise the state may change on changed, and
// by until (if not zero) over it is if nothing started meanwhile. A punch
// is expected to start within Config.StartTimeout of the connection.
func (s *Service) verdict(c *p2p.Conn, now time.Time) (over, success bool, until time.Time, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.punches[c.RemotePeer()]
	switch {
	case st != nil && st.running > 0:
		return false, false, time.Time{}, s.changed
	case st != nil && st.conn == c && st.final:
		return true, st.success, time.Time{}, s.changed
	case st != nil && st.conn == c:
		until = st.idle.Add(nextAttemptWait)
	default:
		until = c.Opened().Add(s.cfg.StartTimeout)
	}
	return !now.Before(until), false, until, s.changed
}

// WaitDirect implements p2p.DirectWaiter: it returns the direct connection
// to c's peer once a hole punch gave one, or nil once none will come of
// c: the peer does not speak DCUtR, this host has no address to offer,
// the punch failed (three attempts), none started within
// Config.StartTimeout, or c closed and no direct connection replaced it.
func (s *Service) WaitDirect(ctx context.Context, c *p2p.Conn) (*p2p.Conn, error) {
	p := c.RemotePeer()
	select {
	case <-c.Identified():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !s.h.Peerstore().SupportsProtocol(p, Protocol) || len(s.ownAddrs()) == 0 {
		// No punch will run, or none can succeed: we have no address
		// to offer (the receiver refuses such a punch at once).
		return s.h.DirectConn(p), nil
	}
	for {
		if d := s.h.DirectConn(p); d != nil {
			return d, nil
		}
		over, success, until, changed := s.verdict(c, time.Now())
		if (over && success) || c.IsClosed() {
			// The host closes a relayed connection that a direct one
			// replaced: wait for that one to settle.
			return s.settledDirect(ctx, p)
		}
		if over || s.ctx.Err() != nil {
			return nil, nil
		}
		if err := s.waitChange(ctx, c, changed, until); err != nil {
			return nil, err
		}
	}
}

// settledDirect returns p's direct connection after a successful punch,
// waiting for it while the collapse of the punch's two connections
// settles (see directSoon).
func (s *Service) settledDirect(ctx context.Context, p peer.ID) (*p2p.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	s.directSoon(dctx, p)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return s.h.DirectConn(p), nil
}

// waitChange waits for changed, until (if not zero), c's end or the
// service's; an error only if ctx ends first.
func (s *Service) waitChange(ctx context.Context, c *p2p.Conn, changed <-chan struct{}, until time.Time) error {
	var timeout <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-changed:
	case <-timeout:
	case <-c.Done():
	case <-s.ctx.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
