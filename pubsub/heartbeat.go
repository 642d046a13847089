package pubsub

import (
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// runHeartbeat runs the heartbeat every Params.Heartbeat until Close.
func (ps *PubSub) runHeartbeat() {
	defer ps.wg.Done()
	tk := time.NewTicker(ps.cfg.Params.Heartbeat)
	defer tk.Stop()
	for {
		select {
		case <-ps.ctx.Done():
			return
		case <-tk.C:
			ps.heartbeat()
		}
	}
}

// outbox gathers the control messages of one heartbeat, one RPC per peer.
type outbox map[peer.ID]*Control

func (o outbox) to(p peer.ID) *Control {
	c := o[p]
	if c == nil {
		c = &Control{}
		o[p] = c
	}
	return c
}

// heartbeat maintains the meshes and fanouts, gossips, and ages scores
// and caches (gossipsub-v1.1.md, "Heartbeat").
func (ps *PubSub) heartbeat() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := time.Now()
	ps.tick++
	scores := make(map[peer.ID]float64, len(ps.peers))
	for p, pc := range ps.peers {
		scores[p] = ps.scoreLocked(p, now)
		pc.ihaves, pc.asked = 0, 0
	}
	out := outbox{}
	for name, t := range ps.topics {
		for p, until := range t.backoff {
			if !now.Before(until) {
				delete(t.backoff, p)
			}
		}
		if t.mesh != nil {
			ps.maintainMeshLocked(name, t, scores, now, out)
			ps.gossipLocked(name, t, t.mesh, scores, out)
		} else if t.fanout != nil {
			ps.maintainFanoutLocked(name, t, scores, now, out)
		}
		if t.idle() {
			delete(ps.topics, name)
		}
	}
	ps.brokenPromisesLocked(now)
	ps.ageLocked(now)
	for p, c := range out {
		if pc := ps.peers[p]; pc != nil {
			pc.send(frame(&RPC{Control: *c}))
		}
	}
}

// maintainMeshLocked keeps t's mesh within [Dlo, Dhi]: negative peers go,
// a short mesh grows to D, a long one shrinks to D keeping the Dscore
// best and Dout outbound peers, and every OpportunisticGraftTicks a mesh
// whose median score is low takes better peers.
func (ps *PubSub) maintainMeshLocked(name string, t *topic, scores map[peer.ID]float64, now time.Time, out outbox) {
	p := ps.cfg.Params
	for q := range t.mesh {
		if scores[q] < 0 {
			out.to(q).Prune = append(out.to(q).Prune, ps.pruneLocked(t, name, q, false, p.PruneBackoff))
		}
	}
	graft := func(q peer.ID) {
		ps.graftLocked(t, name, q, now)
		out.to(q).Graft = append(out.to(q).Graft, name)
	}
	if len(t.mesh) < p.Dlo {
		for _, q := range ps.candidatesLocked(t, t.mesh, now, 0) {
			if len(t.mesh) >= p.D {
				break
			}
			graft(q)
		}
	}
	if len(t.mesh) > p.Dhi {
		for _, q := range ps.shrinkLocked(t, scores) {
			out.to(q).Prune = append(out.to(q).Prune, ps.pruneLocked(t, name, q, true, p.PruneBackoff))
		}
	}
	if len(t.mesh) >= p.Dlo && ps.outboundIn(t.mesh) < p.Dout {
		need := p.Dout - ps.outboundIn(t.mesh)
		for _, q := range ps.candidatesLocked(t, t.mesh, now, 0) {
			if need == 0 {
				break
			}
			if ps.peers[q].outbound {
				graft(q)
				need--
			}
		}
	}
	if ps.tick%p.OpportunisticGraftTicks == 0 && len(t.mesh) > 1 {
		ps.opportunisticLocked(t, scores, now, graft)
	}
}

// shrinkLocked chooses the peers to prune from a mesh above Dhi: it keeps
// the Dscore best, then random ones up to D, then swaps in outbound peers
// until Dout of those kept are outbound.
func (ps *PubSub) shrinkLocked(t *topic, scores map[peer.ID]float64) []peer.ID {
	p := ps.cfg.Params
	all := sortedIDs(t.mesh)
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	sort.SliceStable(all, func(i, j int) bool { return scores[all[i]] > scores[all[j]] })
	rest := all[p.Dscore:]
	rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	keep, drop := all[:p.D], all[p.D:]
	for i := len(keep) - 1; i >= p.Dscore && ps.outboundIn(setOf(keep)) < p.Dout; i-- {
		if ps.peers[keep[i]].outbound {
			continue
		}
		j := slices.IndexFunc(drop, func(q peer.ID) bool { return ps.peers[q].outbound })
		if j < 0 {
			break
		}
		keep[i], drop[j] = drop[j], keep[i]
	}
	return slices.Clone(drop)
}

func setOf(ids []peer.ID) map[peer.ID]struct{} {
	m := make(map[peer.ID]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	return m
}

func (ps *PubSub) outboundIn(set map[peer.ID]struct{}) int {
	n := 0
	for q := range set {
		if pc := ps.peers[q]; pc != nil && pc.outbound {
			n++
		}
	}
	return n
}

// opportunisticLocked grafts up to OpportunisticGraftPeers peers scoring
// above the mesh's median when that median is below the threshold.
func (ps *PubSub) opportunisticLocked(t *topic, scores map[peer.ID]float64, now time.Time, graft func(peer.ID)) {
	ms := make([]float64, 0, len(t.mesh))
	for q := range t.mesh {
		ms = append(ms, scores[q])
	}
	slices.Sort(ms)
	median := ms[len(ms)/2]
	if median >= ps.cfg.Score.OpportunisticGraftThreshold {
		return
	}
	n := 0
	for _, q := range ps.candidatesLocked(t, t.mesh, now, median) {
		if n >= ps.cfg.Params.OpportunisticGraftPeers {
			break
		}
		if scores[q] > median {
			graft(q)
			n++
		}
	}
}

// maintainFanoutLocked forgets a fanout unused for FanoutTTL, drops its
// peers that left or score below the publish threshold, refills it to D.
func (ps *PubSub) maintainFanoutLocked(name string, t *topic, scores map[peer.ID]float64, now time.Time, out outbox) {
	if now.Sub(t.lastPub) > ps.cfg.Params.FanoutTTL {
		t.fanout = nil
		return
	}
	for q := range t.fanout {
		if _, ok := t.peers[q]; !ok || scores[q] < ps.cfg.Score.PublishThreshold {
			delete(t.fanout, q)
		}
	}
	ps.fillLocked(t, t.fanout, ps.cfg.Params.D, now, ps.cfg.Score.PublishThreshold)
	ps.gossipLocked(name, t, t.fanout, scores, out)
}

// gossipLocked announces the topic's recent messages (IHAVE) to
// max(Dlazy, GossipFactor of the candidates) peers outside the mesh that
// score at least the gossip threshold.
func (ps *PubSub) gossipLocked(name string, t *topic, exclude map[peer.ID]struct{}, scores map[peer.ID]float64, out outbox) {
	ids := ps.mcache.gossipIDs(name, ps.cfg.Params.MaxIHaveLength)
	if len(ids) == 0 {
		return
	}
	var c []peer.ID
	for q := range t.peers {
		pc := ps.peers[q]
		if _, in := exclude[q]; in || pc == nil || pc.floodsub() || scores[q] < ps.cfg.Score.GossipThreshold {
			continue
		}
		c = append(c, q)
	}
	n := max(ps.cfg.Params.Dlazy, int(ps.cfg.Params.GossipFactor*float64(len(c))))
	rand.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	for _, q := range c[:min(n, len(c))] {
		out.to(q).IHave = append(out.to(q).IHave, IHave{Topic: name, IDs: ids})
	}
}

// brokenPromisesLocked penalises the peers whose IHAVE promises expired
// unkept (P7), and forgets those promises.
func (ps *PubSub) brokenPromisesLocked(now time.Time) {
	for id, ps2 := range ps.promises {
		for p, deadline := range ps2 {
			if now.After(deadline) {
				ps.statsLocked(p).behaviour++
				delete(ps2, p)
			}
		}
		if len(ps2) == 0 {
			delete(ps.promises, id)
		}
	}
}

// ageLocked decays the scores' counters, forgets gone peers' stats after
// RetainScore, and shifts the caches.
func (ps *PubSub) ageLocked(now time.Time) {
	for p, s := range ps.stats {
		empty := ps.cfg.Score.decay(s)
		gone := ps.peers[p] == nil
		if gone && (empty || now.Sub(s.gone) > ps.cfg.Score.RetainScore) {
			delete(ps.stats, p)
		}
	}
	ps.mcache.shift()
	ps.seen.expire(now)
}
