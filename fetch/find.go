package fetch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/peer"
)

// Finding providers: the connected peers are asked at once and peers as
// they connect (and again when identified); routing (the DHT) only when
// none of them has provided the root within routingDelay, and then each
// provider it finds is dialled and handed to the session while the lookup
// goes on.
//
// A peer reached only through a relay that limits data (libp2p's default
// relays) cannot send a DAG: an ask or a dial of it waits for a hole punch
// to give a direct connection (three attempts of up to 5 s each, hence the
// timeouts), and when none comes it counts as a source that answered, so
// that a fetch it was the only hope of ends at once, saying so.
const (
	askTimeout     = 20 * time.Second
	askRetry       = 250 * time.Millisecond // before a failed ask is tried again
	connectTimeout = 20 * time.Second
	routingDelay   = 300 * time.Millisecond
	// A node that has just joined the network (the CLI without a daemon
	// starts one per command) may still be filling its routing table:
	// routing waits for it this long after the join.
	routingReadyWait = 5 * time.Second
	// lanGrace is how long after the join peers found by mDNS may still
	// connect (its first two queries go out a second apart): until then
	// the connected peers answering no does not end a fetch.
	lanGrace = 3 * time.Second
)

// findProviders feeds the session the providers of the root until the
// fetch ends, and returns once every goroutine it started has. When every
// source has answered no, it ends the fetch (see sources).
func (r *run) findProviders() {
	var wg sync.WaitGroup
	defer wg.Wait()
	if r.nw.Router != nil {
		wg.Go(r.findByRouting)
	} else {
		r.settled(func() { r.src.routing = "the DHT is off" })
	}
	if d := time.Until(r.nw.Since.Add(lanGrace)); d > 0 {
		wg.Go(func() {
			if wait(r.ctx, d) {
				r.settled(func() { r.src.graced = true })
			}
		})
	} else {
		r.settled(func() { r.src.graced = true })
	}
	// A peer is asked when it connects and once more when identify has
	// said what it speaks (Watch reports it again then): before that a
	// kubo peer is asked over the share protocol, which it refuses, and
	// not over Bitswap.
	asked := make(map[peer.ID]int)
	askUpTo := func(p peer.ID, times int) {
		if asked[p] < times {
			asked[p]++
			r.settled(func() { r.src.pending++ })
			wg.Go(func() { r.ask(p) })
		}
	}
	// The peers connected now are counted before the sources can be
	// found exhausted, and asked once: Watch reports them again, and
	// identify has run on them as a rule (Exchange.Has waits for it when
	// it has not).
	for _, p := range r.nw.Peers.Peers() {
		askUpTo(p, 1)
		asked[p] = 2
	}
	r.settled(func() { r.src.primed = true })
	r.nw.Peers.Watch(r.ctx, func(p peer.ID, up bool) {
		if !up {
			delete(asked, p) // ask again if it comes back
			return
		}
		askUpTo(p, 2)
	})
}

// ask hands p to the session if it has the root. An ask that fails
// fast (a stream reset: the connection it went on closed, a duplicate
// say) is tried once more: a lost ask is not a no, and nothing else would
// ask p again.
func (r *run) ask(p peer.ID) {
	has, err := r.askOnce(p)
	if retryable(err) && wait(r.ctx, askRetry) {
		has, err = r.askOnce(p)
	}
	switch {
	case err == nil && has:
		r.sess.AddProviders(p)
		r.settled(r.src.provided)
	case err == nil || errors.Is(err, mss.ErrNotSupported):
		// A peer that does not speak the protocol cannot send it either.
		r.settled(func() { r.src.answered(p) })
	case errors.Is(err, p2p.ErrLimitedConn):
		r.settled(func() { r.src.answeredLimited(p) })
	default:
		r.settled(r.src.silent)
	}
}

// retryable reports whether an ask that failed with err may succeed at
// once if tried again: not a refusal, a timeout or a limited relay.
func retryable(err error) bool {
	return err != nil && !errors.Is(err, mss.ErrNotSupported) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, p2p.ErrLimitedConn)
}

// askOnce asks p whether it has the root, for askTimeout at most.
func (r *run) askOnce(p peer.ID) (bool, error) {
	ctx, cancel := context.WithTimeout(r.ctx, askTimeout)
	defer cancel()
	return r.nw.Source.Has(ctx, p, r.root)
}

// findByRouting looks the root up with the router unless connected peers
// have provided it within routingDelay.
func (r *run) findByRouting() {
	if !wait(r.ctx, routingDelay) || r.sess.Progress().Peers > 0 {
		return
	}
	ready := r.nw.Since.Add(routingReadyWait)
	for !r.nw.Router.Ready() && time.Now().Before(ready) {
		if !wait(r.ctx, 100*time.Millisecond) {
			return
		}
	}
	if !r.nw.Router.Ready() {
		r.settled(func() { r.src.routing = "DHT has no peers" })
		return
	}
	found, reached := r.lookUp()
	why := "the DHT found no provider"
	if found > 0 {
		why = fmt.Sprintf("the DHT found %d providers, none reachable", found)
	}
	if reached == 0 && r.ctx.Err() == nil {
		r.settled(func() { r.src.routing = why })
	}
}

// lookUp dials every provider the router finds and hands those it reaches
// to the session; it returns once the lookup and the dials are over.
func (r *run) lookUp() (found, reached int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	self := r.nw.Peers.Self()
	for ai := range r.nw.Router.FindProviders(r.ctx, r.root) {
		if ai.ID == self {
			continue
		}
		found++
		wg.Go(func() {
			if r.connect(ai) {
				mu.Lock()
				reached++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return found, reached
}

// connect dials a provider that routing found and hands it to the session.
func (r *run) connect(ai peer.AddrInfo) bool {
	ctx, cancel := context.WithTimeout(r.ctx, connectTimeout)
	defer cancel()
	if err := r.nw.Peers.Connect(ctx, ai); err != nil {
		r.f.log.Debug("provider unreachable", "peer", ai.ID, "err", err)
		if errors.Is(err, p2p.ErrLimitedConn) {
			r.settled(func() { r.src.limit(ai.ID) })
		}
		return false
	}
	r.sess.AddProviders(ai.ID)
	r.settled(func() { r.src.found = true })
	return true
}

// settled applies change to the sources and ends the fetch at once if
// none is left that may provide the root.
func (r *run) settled(change func()) {
	if err := r.src.update(change); err != nil {
		r.f.log.Debug("no source left", "root", r.root, "err", err)
		r.cancel()
	}
}

// sources tracks who may still provide the root: the connected peers not
// yet asked or whose answer is awaited, peers that may still connect
// (within lanGrace of the join), and routing until its lookup and dials
// are over. A peer whose ask failed has not answered, which is not a no:
// then only the idle timeout ends the fetch.
// Its fields change only in functions given to update.
type sources struct {
	mu      sync.Mutex
	pending int              // asks under way
	no      map[peer.ID]bool // peers that answered no
	limited []peer.ID        // providers only reachable through a relay that limits data
	unsure  bool             // an ask failed
	found   bool             // a provider was handed to the session
	routing string           // why routing found nothing; "" while it may
	graced  bool             // the grace for LAN peers is over
	primed  bool             // the peers connected at the start are counted
	err     error            // set once no source is left
}

func (s *sources) provided() { s.pending--; s.found = true }
func (s *sources) silent()   { s.pending--; s.unsure = true }

// limit records that p can be reached only through a relay that limits
// data.
func (s *sources) limit(p peer.ID) {
	if !slices.Contains(s.limited, p) {
		s.limited = append(s.limited, p)
	}
}

// answeredLimited records the end of an ask of p, which can be reached
// only through a relay that limits data.
func (s *sources) answeredLimited(p peer.ID) { s.pending--; s.limit(p) }

func (s *sources) answered(p peer.ID) {
	s.pending--
	if s.no == nil {
		s.no = make(map[peer.ID]bool)
	}
	s.no[p] = true
}

// update applies change and returns the fetch's error the first time no
// source is left.
func (s *sources) update(change func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	change()
	if s.err != nil || !s.primed || s.found || s.unsure || s.pending > 0 || s.routing == "" || !s.graced {
		return nil
	}
	s.err = fmt.Errorf("no peer that has it was found: asked %d connected peers, %s", len(s.no), s.routing)
	if len(s.limited) > 0 {
		s.err = limitedErr(s.limited)
	}
	return s.err
}

// limitedErr says that the peers ps, the only ones found, can be reached
// only through relays that limit data: of kind errs.Unreachable. It names
// the smallest ID, so that the line does not depend on who answered first.
func limitedErr(ps []peer.ID) error {
	first := slices.Min(ps).ShortString()
	who := "peer " + first + " is"
	if len(ps) > 1 {
		who = fmt.Sprintf("peer %s and %d more are", first, len(ps)-1)
	}
	return errs.E(errs.Unreachable, fmt.Errorf("%s %w", who, p2p.ErrLimitedConn))
}

// exhausted is the error that ended the fetch for want of a source, or
// nil.
func (s *sources) exhausted() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// wait waits for d, or less if ctx ends; it reports whether ctx is alive.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
