package exchange

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/exchange/sched"
	"github.com/share-p2p/share/p2p/peer"
)

// WantWire is a second block protocol, of wantlists, that sessions use for
// providers that do not speak the share protocol: Bitswap, which kubo
// speaks (the node adapts package bitswap to it). A peer that speaks both
// is asked over the share protocol.
//
// Unlike the share protocol's streams, which belong to one session, a
// wantlist is one per peer: the Exchange keeps, per peer, which sessions
// want which block, sends one want however many sessions want a block and
// cancels it when none does any more, and hands each answer to the
// sessions waiting for it.
type WantWire interface {
	// Protocol names the wire ("/ipfs/bitswap/1.2.0"), for PeerStat.
	Protocol() string
	// Speaks reports whether identify says p speaks the wire.
	Speaks(p peer.ID) bool
	// Send sends p wants and cancels. Answers come back through
	// Exchange.WireBlock and Exchange.WirePresence.
	Send(ctx context.Context, p peer.ID, w Wants) error
	// CutOff ends p's streams of the wire: it misbehaved.
	CutOff(p peer.ID, err error)
}

// Wants is one message of a WantWire: blocks wanted (a peer that lacks
// one says DONT_HAVE), blocks asked about (HAVE or DONT_HAVE), and
// cancels of earlier wants.
type Wants struct {
	Blocks, Haves, Cancels []cid.Cid
}

// wirePeer is the Exchange's side of one peer's wantlist. Guarded by
// Exchange.wmu.
type wirePeer struct {
	wants map[cid.Cid][]*peerConn // sessions' block wants outstanding
	haves map[cid.Cid][]chan bool // Has calls waiting for an answer
	conns map[*peerConn]struct{}  // the sessions using the peer
	late  [2]map[cid.Cid]struct{} // wants cancelled lately (two generations)
}

// lateGen is how many cancelled wants a generation of wirePeer.late
// holds: blocks sent after their cancel are duplicates, not misbehaviour.
const lateGen = 4096

func newWirePeer() *wirePeer {
	return &wirePeer{
		wants: make(map[cid.Cid][]*peerConn),
		haves: make(map[cid.Cid][]chan bool),
		conns: make(map[*peerConn]struct{}),
		late:  [2]map[cid.Cid]struct{}{make(map[cid.Cid]struct{}), make(map[cid.Cid]struct{})},
	}
}

// cancelled records that c is wanted no more.
func (wp *wirePeer) cancelled(c cid.Cid) {
	if len(wp.late[0]) >= lateGen {
		wp.late[1], wp.late[0] = wp.late[0], make(map[cid.Cid]struct{})
	}
	wp.late[0][c] = struct{}{}
}

func (wp *wirePeer) isLate(c cid.Cid) bool {
	_, a := wp.late[0][c]
	_, b := wp.late[1][c]
	return a || b
}

// useWire reports whether a session asks p over the want wire: p does
// not speak the share protocol (as far as identify says) and speaks the
// wire. A peer identify has not described yet is asked over the share
// protocol.
func (e *Exchange) useWire(p peer.ID) bool {
	w := e.cfg.Wire
	if w == nil || (e.cfg.Speaks != nil && e.cfg.Speaks(p, e.proto)) {
		return false
	}
	return w.Speaks(p)
}

// wirePeerLocked returns p's wantlist state, creating it.
func (e *Exchange) wirePeerLocked(p peer.ID) *wirePeer {
	wp := e.wire[p]
	if wp == nil {
		wp = newWirePeer()
		e.wire[p] = wp
	}
	return wp
}

// wants records the requests and cancels the scheduler assigned pc and
// returns the message that carries them: a block another session wants
// already is not asked again, and a cancel goes out only when no session
// wants the block any more.
func (e *Exchange) wants(pc *peerConn, sends []sched.Send) Wants {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	wp := e.wirePeerLocked(pc.id)
	wp.conns[pc] = struct{}{}
	var w Wants
	for _, x := range sends {
		pcs := wp.wants[x.C]
		if !x.Cancel {
			if len(pcs) == 0 {
				w.Blocks = append(w.Blocks, x.C)
			}
			wp.wants[x.C] = append(pcs, pc)
			continue
		}
		if e.unwantLocked(wp, pc, x.C) {
			w.Cancels = append(w.Cancels, x.C)
		}
	}
	return w
}

// unwantLocked removes pc's want of c and reports whether nobody wants c
// from the peer any more (it is then to be cancelled).
func (e *Exchange) unwantLocked(wp *wirePeer, pc *peerConn, c cid.Cid) bool {
	pcs := wp.wants[c]
	for i, o := range pcs {
		if o == pc {
			pcs = append(pcs[:i], pcs[i+1:]...)
			break
		}
	}
	if len(pcs) > 0 {
		wp.wants[c] = pcs
		return false
	}
	delete(wp.wants, c)
	wp.cancelled(c)
	return true
}

// leaveWire forgets pc, whose session is done with its peer, and cancels
// the wants nobody else has.
func (e *Exchange) leaveWire(pc *peerConn) {
	e.wmu.Lock()
	wp := e.wire[pc.id]
	if wp == nil {
		e.wmu.Unlock()
		return
	}
	delete(wp.conns, pc)
	var cancels []cid.Cid
	for c, pcs := range wp.wants {
		for _, o := range pcs {
			if o == pc {
				if e.unwantLocked(wp, pc, c) {
					cancels = append(cancels, c)
				}
				break
			}
		}
	}
	e.wmu.Unlock()
	if len(cancels) > 0 {
		go e.sendCancels(pc.id, cancels)
	}
}

// sendCancels tells p that cs are wanted no more, without holding up
// the session that ended.
func (e *Exchange) sendCancels(p peer.ID, cs []cid.Cid) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.WriteTimeout)
	defer cancel()
	if err := e.cfg.Wire.Send(ctx, p, Wants{Cancels: cs}); err != nil {
		e.log.Debug("cancel wants", "peer", p, "err", err)
	}
}

// WireBlock takes a block that p sent over the want wire, with the
// prefix of its CID; the CID is computed from the data, so the block is
// verified once it is known to be wanted. It goes to every session that
// wants it from p. A block nobody asked p for, and nobody cancelled
// lately, cuts p off. The Exchange keeps data (it must not be reused).
func (e *Exchange) WireBlock(p peer.ID, prefix cid.Prefix, data []byte) {
	c, err := cidOf(prefix, data)
	if err != nil {
		e.log.Debug("wire block", "peer", p, "err", err)
		return // not a hash we could have asked for
	}
	e.wmu.Lock()
	wp := e.wire[p]
	if wp == nil {
		wp = newWirePeer()
	}
	pcs := wp.wants[c]
	delete(wp.wants, c)
	haves := wp.haves[c]
	delete(wp.haves, c)
	late := wp.isLate(c)
	if len(pcs) > 0 || len(haves) > 0 {
		// a second copy (kubo answers each want-have of a small block
		// with the block, and a Has may have asked twice) is late
		wp.cancelled(c)
	}
	e.wmu.Unlock()
	answerHaves(haves, true)
	if len(pcs) == 0 && len(haves) == 0 && !late {
		e.cutOff(p, fmt.Errorf("%w: unrequested block %s", ErrProtocol, c))
		return
	}
	for i, pc := range pcs {
		b := data
		if i > 0 {
			b = append([]byte(nil), data...) // each session owns its blocks
		}
		pc.s.receivedWire(pc, c, b)
	}
}

// WirePresence takes p's HAVE (have) or DONT_HAVE of c.
func (e *Exchange) WirePresence(p peer.ID, c cid.Cid, have bool) {
	e.wmu.Lock()
	wp := e.wire[p]
	if wp == nil {
		e.wmu.Unlock()
		return
	}
	haves := wp.haves[c]
	delete(wp.haves, c)
	if len(haves) > 0 {
		wp.cancelled(c) // a later answer, even the block itself, is late
	}
	var pcs []*peerConn
	if !have {
		pcs = wp.wants[c]
		delete(wp.wants, c)
	}
	e.wmu.Unlock()
	answerHaves(haves, have)
	for _, pc := range pcs {
		pc.lastFrame.Store(time.Now().UnixNano())
		pc.s.dontHave(pc, c)
	}
}

func answerHaves(chs []chan bool, have bool) {
	for _, ch := range chs {
		ch <- have // buffered: one answer each
	}
}

// cutOff stops using p, which misbehaved on the want wire: every session
// drops it for good, and its streams end.
func (e *Exchange) cutOff(p peer.ID, err error) {
	e.wmu.Lock()
	var conns []*peerConn
	if wp := e.wire[p]; wp != nil {
		for pc := range wp.conns {
			conns = append(conns, pc)
		}
		delete(e.wire, p)
	}
	e.wmu.Unlock()
	e.cfg.Wire.CutOff(p, err)
	for _, pc := range conns {
		pc.s.dropPeer(pc, err, true)
	}
	e.badPeer(p, err)
}

// WireLost tells the exchange that p's want wire is gone (disconnected, or
// cut off by the wire for a malformed message): sessions stop waiting for
// its answers and ask the others at once.
func (e *Exchange) WireLost(p peer.ID, err error) {
	e.wmu.Lock()
	var conns []*peerConn
	if wp := e.wire[p]; wp != nil {
		for pc := range wp.conns {
			conns = append(conns, pc)
		}
	}
	e.wmu.Unlock()
	for _, pc := range conns {
		pc.s.dropPeer(pc, err, false)
	}
}

// hasWire asks p about cids over the want wire and waits for every
// answer.
func (e *Exchange) hasWire(ctx context.Context, p peer.ID, cids []cid.Cid) ([]bool, error) {
	chs := make([]chan bool, len(cids))
	e.wmu.Lock()
	wp := e.wirePeerLocked(p)
	for i, c := range cids {
		chs[i] = make(chan bool, 1)
		wp.haves[c] = append(wp.haves[c], chs[i])
	}
	e.wmu.Unlock()
	defer e.dropHaves(p, cids, chs)
	if err := e.cfg.Wire.Send(ctx, p, Wants{Haves: cids}); err != nil {
		return nil, fmt.Errorf("ask %s: %w", p, err)
	}
	timeout := time.NewTimer(e.cfg.ReadTimeout)
	defer timeout.Stop()
	have := make([]bool, len(cids))
	for i, ch := range chs {
		select {
		case have[i] = <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("ask %s: %w", p, ctx.Err())
		case <-timeout.C:
			return nil, fmt.Errorf("ask %s: %w", p, errNoAnswer)
		}
	}
	return have, nil
}

var errNoAnswer = errors.New("no answer")

// dropHaves forgets the Has waiters chs of cids that got no answer.
func (e *Exchange) dropHaves(p peer.ID, cids []cid.Cid, chs []chan bool) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	wp := e.wire[p]
	if wp == nil {
		return
	}
	for i, c := range cids {
		ws := wp.haves[c]
		for j, ch := range ws {
			if ch == chs[i] {
				ws = append(ws[:j], ws[j+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(wp.haves, c)
			wp.cancelled(c) // its answer may still come, maybe as the block
		} else {
			wp.haves[c] = ws
		}
	}
}

// cidOf computes the CID of data under prefix, with the package dag's
// fast hashers for the hashes share and kubo use.
func cidOf(p cid.Prefix, data []byte) (cid.Cid, error) {
	switch {
	case p.MhType == mh.BLAKE3 && p.MhLength == 32 && p.Version == 1:
		return dag.Sum(p.Codec, data), nil
	case p.MhType == mh.SHA2_256 && (p.MhLength == 32 || p.MhLength == -1):
		d := sha256.Sum256(data)
		m, _ := mh.Encode(d[:], mh.SHA2_256)
		if p.Version == 0 {
			return cid.NewCidV0(m), nil
		}
		return cid.NewCidV1(p.Codec, m), nil
	}
	return cid.Undef, fmt.Errorf("%w: hash %#x of %d bytes", dag.ErrUnsupported, p.MhType, p.MhLength)
}

// runWant sends the requests and cancels the scheduler assigns pc, a
// provider asked over the want wire, until the session or pc ends. Its
// answers come through WireBlock and WirePresence.
func (pc *peerConn) runWant() {
	s := pc.s
	pc.lastFrame.Store(time.Now().UnixNano())
	sends := make([]sched.Send, 0, s.cfg.MaxWindow)
	for {
		select {
		case <-pc.wake:
		case <-s.done:
			return
		}
		s.mu.Lock()
		if pc.dead || s.finished {
			s.mu.Unlock()
			return
		}
		idle := s.core.Outstanding(pc.sp) == 0
		sends = s.core.Assign(pc.sp, time.Now(), sends[:0])
		s.mu.Unlock()
		if len(sends) == 0 {
			continue
		}
		w := s.e.wants(pc, sends)
		if idle && len(w.Blocks) > 0 {
			pc.lastFrame.Store(time.Now().UnixNano()) // the peer's clock starts now
		}
		if len(w.Blocks)+len(w.Cancels) == 0 {
			continue
		}
		if err := s.e.cfg.Wire.Send(s.ctx, pc.id, w); err != nil {
			s.dropPeer(pc, fmt.Errorf("send wants: %w", err), false)
			return
		}
	}
}

// receivedWire takes a block that pc sent over the want wire, verified
// (its CID was computed from it), and stores it.
func (s *Session) receivedWire(pc *peerConn, c cid.Cid, data []byte) {
	now := time.Now()
	pc.lastFrame.Store(now.UnixNano())
	s.mu.Lock()
	a := s.core.Received(pc.sp, c, len(data), now)
	s.mu.Unlock()
	if a != sched.Requested {
		return // late, or wanted by another session from this peer only
	}
	if err := s.deliver(c, data, nil, pc); err != nil {
		s.finish(err)
	}
}

// silentWirePeersLocked returns the want-wire providers that have had
// requests outstanding without an answer for ReadTimeout: they are
// dropped, as a share-protocol provider whose stream stays silent is.
func (s *Session) silentWirePeersLocked(now time.Time) []*peerConn {
	var silent []*peerConn
	for _, pc := range s.peers {
		if pc.want && s.core.Outstanding(pc.sp) > 0 && now.Sub(time.Unix(0, pc.lastFrame.Load())) > s.cfg.ReadTimeout {
			silent = append(silent, pc)
		}
	}
	return silent
}
