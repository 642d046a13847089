package bitswap

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/traffic"
)

// want is an entry of a peer's wantlist as the server keeps it.
type want struct {
	c            cid.Cid
	typ          WantType
	sendDontHave bool
	queued       bool // in the queue or being answered
	inFlight     bool // being answered
	upgraded     bool // a want-block came while a want-have was answered
	cancelled    bool // withdrawn (or replaced by a full wantlist) while queued
}

// task is a want as the sender answers it: a copy of its fields taken
// under the lock.
type task struct {
	w            *want
	c            cid.Cid
	typ          WantType
	sendDontHave bool
}

// ledger is the server's account of one peer: the wantlist it keeps and
// the wants waiting for an answer, in the order they came (kubo's
// priorities fall in the order it asks). Guarded by peerState.mu.
type ledger struct {
	wants   map[cid.Cid]*want
	queue   []*want
	sending bool // a sender goroutine runs
}

func (l *ledger) clear() {
	l.wants = nil
	clear(l.queue)
	l.queue = nil
}

// want applies the wantlist of m: cancels, a full list's replacement, new
// wants queued for an answer. It waits while MaxRequests wants of the
// peer are queued (the peer's stream is not read meanwhile). More than
// MaxWantlist kept wants is an error wrapping ErrFlood.
func (ps *peerState) want(m *Message) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if m.Full {
		ps.replaceWantlist(m.Wants)
	}
	for i := range m.Wants {
		e := &m.Wants[i]
		if ps.closed {
			return nil
		}
		if e.Cid.Prefix().MhType == mh.IDENTITY {
			continue // boxo ignores them too: the CID is the block
		}
		if e.Cancel {
			ps.cancelLocked(e.Cid)
			continue
		}
		if err := ps.addLocked(e); err != nil {
			return err
		}
	}
	return nil
}

// replaceWantlist drops the kept wants a full wantlist does not list.
func (ps *peerState) replaceWantlist(entries []Entry) {
	keep := make(map[cid.Cid]bool, len(entries))
	for _, e := range entries {
		if !e.Cancel {
			keep[e.Cid] = true
		}
	}
	for c := range ps.wants {
		if !keep[c] {
			ps.cancelLocked(c)
		}
	}
}

func (ps *peerState) cancelLocked(c cid.Cid) {
	if w := ps.wants[c]; w != nil {
		w.cancelled = true
		delete(ps.wants, c)
	}
}

// addLocked keeps e's want and queues it, unless it is queued already. A
// want-block replaces a want-have of the same CID.
func (ps *peerState) addLocked(e *Entry) error {
	w := ps.wants[e.Cid]
	if w == nil {
		if len(ps.wants) >= ps.b.cfg.MaxWantlist {
			return fmt.Errorf("%w: more than %d wants", ErrFlood, ps.b.cfg.MaxWantlist)
		}
		w = &want{c: e.Cid, typ: e.Type}
		ps.wants[e.Cid] = w
	}
	if e.Type == WantBlock && w.typ == WantHave {
		w.typ = WantBlock
		w.upgraded = w.inFlight // the HAVE under way does not answer it
	}
	w.sendDontHave = w.sendDontHave || e.SendDontHave
	if w.queued {
		return nil
	}
	for len(ps.queue) >= ps.b.cfg.MaxRequests && !ps.closed {
		ps.space.Wait()
	}
	if ps.closed {
		return nil
	}
	w.queued = true
	ps.queue = append(ps.queue, w)
	if !ps.sending && ps.b.hold(ps) {
		ps.sending = true
		go ps.serve()
	}
	return nil
}

// pop takes the next live want off the queue; false if none is left. The
// want stays queued (a repeat of it is not queued again) until done.
func (ps *peerState) pop() (task, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for len(ps.queue) > 0 && !ps.closed {
		w := ps.queue[0]
		ps.queue[0] = nil
		ps.queue = ps.queue[1:]
		ps.space.Signal()
		if !w.cancelled {
			w.inFlight = true
			return task{w: w, c: w.c, typ: w.typ, sendDontHave: w.sendDontHave}, true
		}
		w.queued = false
	}
	return task{}, false
}

// done ends the answering of w; forget says it got a block or a HAVE, and
// is forgotten as boxo does (a want answered DONT_HAVE, or not at all,
// stays until cancelled). A want upgraded to want-block meanwhile is
// queued again (beyond MaxRequests: the sender does not wait).
func (ps *peerState) done(w *want, forget bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	w.inFlight = false
	if w.upgraded && !w.cancelled && !ps.closed {
		w.upgraded = false
		ps.queue = append(ps.queue, w)
		return
	}
	w.queued = false
	if forget && ps.wants[w.c] == w {
		delete(ps.wants, w.c)
	}
}

// idle stops the sender if no want waits (under the lock, so that a want
// queued after it starts another sender).
func (ps *peerState) idle() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.queue) > 0 && !ps.closed {
		return false
	}
	ps.queue = nil // lets the backing array go
	ps.sending = false
	return true
}

// Batching: a message holds blocks up to about targetMessage bytes (boxo
// targets 16 KiB, one block a message; fewer, larger messages cost less
// here and there) and never more than MaxMessageSize.
const (
	targetMessage = 1 << 20
	// messageSlack is room for the presences and framing beside the
	// blocks of a message.
	messageSlack = 64 << 10
	maxBlock     = MaxMessageSize - messageSlack
	// maxPresences bounds the presences of one message (about 40 bytes
	// each).
	maxPresences = 1024
)

// batch is a message the sender is building, with the blocks it holds.
type batch struct {
	m        Message
	held     []share.Block
	answered []*want // done once the message is sent
	bytes    int
}

func (bt *batch) reset() {
	for _, b := range bt.held {
		b.Release()
	}
	clear(bt.held)
	clear(bt.answered)
	clear(bt.m.Blocks)
	clear(bt.m.Presences)
	bt.held, bt.answered = bt.held[:0], bt.answered[:0]
	bt.m.Blocks, bt.m.Presences = bt.m.Blocks[:0], bt.m.Presences[:0]
	bt.bytes = 0
}

// serve is the peer's sender: it answers the queued wants in messages
// until none is left.
func (ps *peerState) serve() {
	defer ps.b.release(ps)
	var bt batch
	var next task // popped, left for the next message
	defer bt.reset()
	for {
		drained := ps.fill(&bt, &next)
		if len(bt.m.Blocks)+len(bt.m.Presences) > 0 {
			if err := ps.flush(&bt); err != nil {
				ps.b.log.Debug("bitswap: answer not sent", "peer", ps.id, "err", err)
				if next.w != nil {
					ps.done(next.w, false)
				}
				ps.shutQueue()
				return
			}
		}
		if drained && ps.idle() {
			return
		}
	}
}

// fill adds answers to bt until it is full or the queue is empty (true).
// A want whose block does not fit is left in next.
func (ps *peerState) fill(bt *batch, next *task) bool {
	limit := min(targetMessage, ps.b.cfg.MaxBufferedBytes)
	for bt.bytes < limit && len(bt.m.Presences) < maxPresences {
		t, ok := *next, next.w != nil
		if !ok {
			t, ok = ps.pop()
		}
		*next = task{}
		if !ok {
			return true
		}
		if !ps.answer(bt, t) {
			*next = t // no room for its block: first of the next message
			return false
		}
	}
	return false
}

// shutQueue drops the queue after a failed write (the peer's stream is
// gone) and stops the sender; kept wants stay, for a stream to come.
func (ps *peerState) shutQueue() {
	ps.mu.Lock()
	for _, w := range ps.queue {
		w.queued = false
	}
	clear(ps.queue)
	ps.queue = nil
	ps.sending = false
	ps.space.Broadcast()
	ps.mu.Unlock()
}

// answer adds t's answer to bt: a HAVE, a block or, if the peer asked for
// them, a DONT_HAVE. False means t's block does not fit in bt (it is not
// held: it loads again for the next message).
func (ps *peerState) answer(bt *batch, t task) bool {
	store := ps.b.cfg.Store
	if t.typ == WantHave {
		if ok, err := store.Has(ps.ctx, t.c); err == nil && ok {
			bt.m.Presences = append(bt.m.Presences, Presence{Cid: t.c})
			bt.answered = append(bt.answered, t.w)
			return true
		}
		ps.dontHave(bt, t)
		return true
	}
	blk, err := store.Get(ps.ctx, t.c)
	if err != nil || len(blk.Data) > maxBlock {
		blk.Release()
		ps.dontHave(bt, t)
		return true
	}
	if len(bt.m.Blocks) > 0 && bt.bytes+len(blk.Data) > maxBlock {
		blk.Release()
		return false
	}
	bt.held = append(bt.held, blk)
	bt.m.Blocks = append(bt.m.Blocks, Block{Prefix: t.c.Prefix(), Data: blk.Data})
	bt.answered = append(bt.answered, t.w)
	bt.bytes += len(blk.Data)
	return true
}

// dontHave answers t DONT_HAVE if the peer asked for it; t is done.
func (ps *peerState) dontHave(bt *batch, t task) {
	if t.sendDontHave {
		bt.m.Presences = append(bt.m.Presences, Presence{Cid: t.c, DontHave: true})
	}
	ps.done(t.w, false)
}

// flush sends bt's message and releases its blocks.
func (ps *peerState) flush(bt *batch) error {
	defer bt.reset()
	ctx, cancel := context.WithCancel(ps.ctx)
	defer cancel()
	err := ps.send(ctx, &bt.m)
	for _, w := range bt.answered {
		ps.done(w, err == nil)
	}
	if err != nil {
		return err
	}
	if len(bt.m.Blocks) > 0 {
		ps.tc.Sent(traffic.Bitswap, len(bt.m.Blocks), int64(bt.bytes))
		if ps.b.cfg.Served != nil {
			ps.b.cfg.Served(len(bt.m.Blocks), int64(bt.bytes))
		}
	}
	return nil
}
