package pubsub

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// handleRPC handles one RPC of pc: subscriptions, then messages, then
// control. A graylisted peer's RPCs are dropped whole.
func (ps *PubSub) handleRPC(pc *peerConn, r *RPC, scratch []byte) []byte {
	ps.mu.Lock()
	if !ps.liveLocked(pc) || ps.scoreLocked(pc.id, time.Now()) < ps.cfg.Score.GraylistThreshold {
		ps.mu.Unlock()
		return scratch
	}
	ps.handleSubsLocked(pc, r.Subs)
	ps.mu.Unlock()
	for _, m := range r.Publish {
		scratch = ps.receive(pc, m, scratch)
	}
	if !r.Control.empty() {
		ps.handleControl(pc, &r.Control)
	}
	return scratch
}

// liveLocked reports whether pc is still its peer's: an RPC read on the
// stream of a peer removed meanwhile must not graft it back into a mesh
// (removePeer cleaned up already, and the mesh would hold a peer with no
// queue: a nil dereference on the next send).
func (ps *PubSub) liveLocked(pc *peerConn) bool { return ps.peers[pc.id] == pc }

func (ps *PubSub) handleSubsLocked(pc *peerConn, subs []SubOpt) {
	for _, s := range subs {
		if s.Topic == "" || len(s.Topic) > MaxTopicLength {
			continue
		}
		if !s.Subscribe {
			delete(pc.topics, s.Topic)
			if t := ps.topics[s.Topic]; t != nil {
				delete(t.peers, pc.id)
				ps.dropFromMeshLocked(t, s.Topic, pc.id)
				delete(t.fanout, pc.id)
			}
			continue
		}
		if _, ok := pc.topics[s.Topic]; !ok && len(pc.topics) >= ps.cfg.MaxTopicsPerPeer {
			continue // memory stays bounded whatever a peer announces
		}
		pc.topics[s.Topic] = struct{}{}
		ps.topicLocked(s.Topic).peers[pc.id] = struct{}{}
	}
}

// receive validates a message pc sent and, if valid and new, delivers
// and forwards it.
func (ps *PubSub) receive(pc *peerConn, m *Message, scratch []byte) []byte {
	id := messageID(m)
	ps.mu.Lock()
	t := ps.topics[m.Topic]
	if t == nil || t.mesh == nil || ps.seen.has(id) || peer.ID(m.From) == ps.self {
		ps.mu.Unlock()
		ps.counts.duplicate.Add(1)
		return scratch // not ours to relay, or known
	}
	v := t.validator
	ps.mu.Unlock()
	if cap(scratch) < len(signPrefix)+m.signedSize() {
		scratch = make([]byte, 0, len(signPrefix)+m.signedSize())
	}
	if err := verify(m, scratch); err != nil {
		if !errors.Is(err, ErrUnsupportedKey) {
			ps.reject(pc.id, m.Topic)
		}
		return scratch
	}
	m.id, m.received = id, pc.id
	if v != nil {
		switch ps.validate(ps.ctx, v, pc.id, m) {
		case Reject:
			ps.reject(pc.id, m.Topic)
			return scratch
		case Ignore:
			ps.counts.ignored.Add(1)
			ps.mu.Lock()
			ps.seen.add(id, time.Now())
			ps.mu.Unlock()
			return scratch
		}
	}
	ps.accept(pc, m)
	return scratch
}

// reject counts an invalid message against p in topic (P4).
func (ps *PubSub) reject(p peer.ID, topicName string) {
	ps.counts.invalid.Add(1)
	ps.mu.Lock()
	ps.statsLocked(p).topic(topicName).invalid++
	ps.mu.Unlock()
}

// accept delivers a valid message and forwards it to the mesh (and the
// floodsub peers) of its topic, unless a copy won the race.
func (ps *PubSub) accept(pc *peerConn, m *Message) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := time.Now()
	if !ps.seen.add(m.id, now) {
		ps.counts.duplicate.Add(1)
		return
	}
	t := ps.topics[m.Topic]
	if t == nil || t.mesh == nil {
		return
	}
	ps.cfg.Score.firstDelivery(ps.statsLocked(pc.id), m.Topic)
	delete(ps.promises, m.id)
	fr := frame(&RPC{Publish: []*Message{m}})
	ps.mcache.put(m.id, m, fr)
	ps.counts.delivered.Add(1)
	ps.counts.subscriptionDrops.Add(t.deliver(m, &ps.cfg))
	author := peer.ID(m.From)
	for p := range t.mesh {
		if q := ps.peers[p]; q != nil && p != pc.id && p != author {
			q.send(fr)
		}
	}
	for p := range t.peers {
		if q := ps.peers[p]; q != nil && q.floodsub() && p != pc.id && p != author {
			q.send(fr)
		}
	}
}

// handleControl answers IHAVE with IWANT, IWANT with messages, GRAFT
// with acceptance or PRUNE, and heeds PRUNE.
func (ps *PubSub) handleControl(pc *peerConn, c *Control) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.liveLocked(pc) {
		return
	}
	now := time.Now()
	score := ps.scoreLocked(pc.id, now)
	var reply RPC
	if score >= ps.cfg.Score.GossipThreshold {
		if ids := ps.iwantFor(pc, c.IHave, now); len(ids) > 0 {
			reply.Control.IWant = []IWant{{IDs: ids}}
		}
		ps.serveIWant(pc, c.IWant)
	}
	reply.Control.Prune = ps.handleGraftsLocked(pc, c.Graft, score, now)
	ps.handlePrunesLocked(pc, c.Prune, score, now)
	if !reply.Control.empty() {
		pc.send(frame(&reply))
	}
}

// iwantFor returns the IDs of the announced messages to ask for, within
// the per-heartbeat limits, and records a promise for one of them.
func (ps *PubSub) iwantFor(pc *peerConn, ihaves []IHave, now time.Time) []string {
	var want []string
	p := ps.cfg.Params
	for _, ih := range ihaves {
		t := ps.topics[ih.Topic]
		if t == nil || t.mesh == nil {
			continue
		}
		pc.ihaves++
		if pc.ihaves > p.MaxIHaveMessages {
			break
		}
		for _, id := range ih.IDs {
			if pc.asked >= p.MaxIHaveLength {
				break
			}
			if !ps.seen.has(id) {
				want = append(want, id)
				pc.asked++
			}
		}
	}
	if len(want) > 0 {
		id := want[rand.IntN(len(want))]
		if ps.promises[id] == nil {
			ps.promises[id] = make(map[peer.ID]time.Time)
		}
		if _, ok := ps.promises[id][pc.id]; !ok {
			ps.promises[id][pc.id] = now.Add(p.IWantFollowup)
		}
	}
	return want
}

// serveIWant sends the asked messages held in the cache, each at most
// GossipRetransmission times to one peer.
func (ps *PubSub) serveIWant(pc *peerConn, iwants []IWant) {
	for _, iw := range iwants {
		for _, id := range iw.IDs {
			e, n := ps.mcache.get(id, pc.id)
			if e != nil && n <= ps.cfg.Params.GossipRetransmission {
				pc.send(e.frame)
			}
		}
	}
}

// handleGraftsLocked adds pc to the meshes it grafts, or returns the
// PRUNEs refusing it: a peer in backoff is penalised (twice if it grafts
// within GraftFloodThreshold of its prune), a negative one refused, and
// a full mesh takes only outbound peers.
func (ps *PubSub) handleGraftsLocked(pc *peerConn, grafts []string, score float64, now time.Time) []Prune {
	var prunes []Prune
	p := ps.cfg.Params
	for _, name := range grafts {
		t := ps.topics[name]
		if t == nil || t.mesh == nil {
			continue // not subscribed: ignored, as kubo does
		}
		if _, ok := t.mesh[pc.id]; ok {
			continue
		}
		if until, ok := t.backoff[pc.id]; ok && now.Before(until) {
			pen := 1.0
			if now.Before(until.Add(-p.PruneBackoff + p.GraftFloodThreshold)) {
				pen++
			}
			ps.statsLocked(pc.id).behaviour += pen
			t.backoff[pc.id] = now.Add(p.PruneBackoff)
			prunes = append(prunes, Prune{Topic: name, Backoff: uint64(p.PruneBackoff / time.Second)})
			continue
		}
		if score < 0 || (len(t.mesh) >= p.Dhi && !pc.outbound) {
			prunes = append(prunes, ps.pruneLocked(t, name, pc.id, score >= 0, p.PruneBackoff))
			continue
		}
		ps.graftLocked(t, name, pc.id, now)
	}
	return prunes
}

// handlePrunesLocked removes pc from the meshes it prunes us from, keeps
// away from it for its backoff, and dials the peers it offers if it
// scores well enough.
func (ps *PubSub) handlePrunesLocked(pc *peerConn, prunes []Prune, score float64, now time.Time) {
	for _, pr := range prunes {
		t := ps.topics[pr.Topic]
		if t == nil {
			continue
		}
		ps.dropFromMeshLocked(t, pr.Topic, pc.id)
		backoff := ps.cfg.Params.PruneBackoff
		if pr.Backoff > 0 && pr.Backoff < 3600 {
			backoff = time.Duration(pr.Backoff) * time.Second
		}
		t.backoff[pc.id] = now.Add(backoff)
		if score >= ps.cfg.Score.AcceptPXThreshold {
			ps.exchangeLocked(pr.Peers)
		}
	}
}

// maxPXDials bounds the peer-exchange dials under way.
const maxPXDials = 8

// exchangeLocked dials up to PrunePeers of the peers a PRUNE offered.
func (ps *PubSub) exchangeLocked(infos []PeerInfo) {
	for i, pi := range infos {
		if i >= ps.cfg.Params.PrunePeers || ps.pxDials >= maxPXDials {
			return
		}
		id := peer.ID(pi.ID)
		if id.Validate() != nil || ps.peers[id] != nil || id == ps.self {
			continue
		}
		pc := ps.addPeerLocked(id, true)
		if pc == nil {
			return // closed
		}
		ps.pxDials++
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			select {
			case <-pc.ready:
			case <-pc.ctx.Done():
			}
			ps.mu.Lock()
			ps.pxDials--
			ps.mu.Unlock()
		}()
	}
}

// graftLocked adds p to t's mesh.
func (ps *PubSub) graftLocked(t *topic, name string, p peer.ID, now time.Time) {
	t.mesh[p] = struct{}{}
	ts := ps.statsLocked(p).topic(name)
	ts.inMesh, ts.grafted = true, now
}

// dropFromMeshLocked removes p from t's mesh, with no message.
func (ps *PubSub) dropFromMeshLocked(t *topic, name string, p peer.ID) {
	if _, ok := t.mesh[p]; !ok {
		return
	}
	delete(t.mesh, p)
	if s := ps.stats[p]; s != nil {
		if ts := s.topics[name]; ts != nil {
			ts.inMesh = false
		}
	}
}

// pruneLocked removes p from t's mesh, backs off from it, and returns
// the PRUNE to send it, offering other peers if px.
func (ps *PubSub) pruneLocked(t *topic, name string, p peer.ID, px bool, backoff time.Duration) Prune {
	ps.dropFromMeshLocked(t, name, p)
	t.backoff[p] = time.Now().Add(backoff)
	pr := Prune{Topic: name, Backoff: uint64(backoff / time.Second)}
	if pc := ps.peers[p]; !px || pc == nil || pc.proto != ProtocolMeshsub11 && pc.proto != ps.cfg.Protocols[0] {
		return pr
	}
	now := time.Now()
	for q := range t.peers {
		if len(pr.Peers) >= ps.cfg.Params.PrunePeers {
			break
		}
		if q != p && ps.scoreLocked(q, now) >= 0 {
			pr.Peers = append(pr.Peers, PeerInfo{ID: []byte(q)})
		}
	}
	return pr
}

// joinLocked subscribes this node to t: it announces it and grafts D
// peers, fanout peers first.
func (ps *PubSub) joinLocked(name string, t *topic) {
	now := time.Now()
	t.mesh = make(map[peer.ID]struct{})
	for p := range t.fanout {
		if len(t.mesh) < ps.cfg.Params.D && ps.scoreLocked(p, now) >= 0 {
			ps.graftLocked(t, name, p, now)
		}
	}
	t.fanout = nil
	ps.fillLocked(t, t.mesh, ps.cfg.Params.D, now, 0)
	sub := frame(&RPC{Subs: []SubOpt{{Subscribe: true, Topic: name}}})
	graft := frame(&RPC{Control: Control{Graft: []string{name}}})
	for _, pc := range ps.peers {
		pc.send(sub)
		if _, ok := t.mesh[pc.id]; ok {
			ps.graftLocked(t, name, pc.id, now)
			pc.send(graft)
		}
	}
}

// leaveLocked unsubscribes: the mesh is pruned with the unsubscribe
// backoff and the topic announced left.
func (ps *PubSub) leaveLocked(name string, t *topic) {
	unsub := frame(&RPC{Subs: []SubOpt{{Subscribe: false, Topic: name}}})
	for p := range t.mesh {
		pr := ps.pruneLocked(t, name, p, true, ps.cfg.Params.UnsubscribeBackoff)
		if pc := ps.peers[p]; pc != nil {
			pc.send(frame(&RPC{Control: Control{Prune: []Prune{pr}}}))
		}
	}
	t.mesh = nil
	for _, pc := range ps.peers {
		pc.send(unsub)
	}
}

// fillLocked adds to set up to n peers of t that speak gossipsub, are not
// in backoff and score at least min.
func (ps *PubSub) fillLocked(t *topic, set map[peer.ID]struct{}, n int, now time.Time, min float64) []peer.ID {
	var added []peer.ID
	for _, p := range ps.candidatesLocked(t, set, now, min) {
		if len(set) >= n {
			break
		}
		set[p] = struct{}{}
		added = append(added, p)
	}
	return added
}

// candidatesLocked returns t's gossipsub peers outside set, not in
// backoff, scoring at least min, in random order.
func (ps *PubSub) candidatesLocked(t *topic, set map[peer.ID]struct{}, now time.Time, min float64) []peer.ID {
	var c []peer.ID
	for p := range t.peers {
		if _, in := set[p]; in {
			continue
		}
		if until, ok := t.backoff[p]; ok && now.Before(until) {
			continue
		}
		pc := ps.peers[p]
		if pc == nil || pc.floodsub() || pc.proto == "" || ps.scoreLocked(p, now) < min {
			continue
		}
		c = append(c, p)
	}
	rand.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	return c
}
