package pubsub

import (
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// ScoreParams weigh peers' behaviour (gossipsub-v1.1.md, "Peer Scoring").
// kubo runs gossipsub with no score parameters at all (every peer scores
// 0, nothing is ever refused for its score), so these are this node's own:
// the same for every topic, since topics are made at run time. P3 and P3b
// (mesh delivery rates) and P6 (IP colocation) are not computed: a quiet
// topic would penalise honest mesh peers, and the host does not expose
// peers' IPs to pubsub. Counters decay once per heartbeat.
type ScoreParams struct {
	TopicWeight float64 // multiplies each topic's part (1)
	TopicCap    float64 // bounds the positive sum of the topics' parts (10)

	TimeInMeshWeight  float64       // P1 (0.01)
	TimeInMeshQuantum time.Duration // (1 s)
	TimeInMeshCap     float64       // in quanta (300)

	FirstDeliveriesWeight float64 // P2 (1)
	FirstDeliveriesDecay  float64 // (0.9)
	FirstDeliveriesCap    float64 // (20)

	InvalidWeight float64 // P4, times the counter squared (-10)
	InvalidDecay  float64 // (0.99)

	// App is P5, the application's opinion of a peer (nil: 0).
	App func(peer.ID) float64

	BehaviourWeight    float64 // P7, times the excess squared (-10)
	BehaviourThreshold float64 // (2)
	BehaviourDecay     float64 // (0.9)

	DecayToZero float64       // a counter below this is 0 (0.01)
	RetainScore time.Duration // a gone peer's counters are kept (10 min)

	// The thresholds: below GossipThreshold no gossip goes to or comes
	// from a peer; below PublishThreshold it gets no own messages; below
	// GraylistThreshold its RPCs are ignored; PX is accepted only from
	// peers at AcceptPXThreshold or more; opportunistic grafting starts
	// when the mesh's median falls under OpportunisticGraftThreshold.
	GossipThreshold, PublishThreshold, GraylistThreshold float64
	AcceptPXThreshold, OpportunisticGraftThreshold       float64
}

// DefaultScore returns the score parameters of a node that was not given
// any: an invalid message costs 10 (squared: three cost 90, past the
// graylist), a GRAFT during backoff costs a behaviour point (two if it
// floods), a broken IHAVE promise one.
func DefaultScore() ScoreParams {
	return ScoreParams{
		TopicWeight: 1, TopicCap: 10,
		TimeInMeshWeight: 0.01, TimeInMeshQuantum: time.Second, TimeInMeshCap: 300,
		FirstDeliveriesWeight: 1, FirstDeliveriesDecay: 0.9, FirstDeliveriesCap: 20,
		InvalidWeight: -10, InvalidDecay: 0.99,
		BehaviourWeight: -10, BehaviourThreshold: 2, BehaviourDecay: 0.9,
		DecayToZero: 0.01, RetainScore: 10 * time.Minute,
		GossipThreshold: -10, PublishThreshold: -50, GraylistThreshold: -80,
		AcceptPXThreshold: 1, OpportunisticGraftThreshold: 1,
	}
}

// peerStats is what scores a peer. It outlives the peer's connection by
// RetainScore, so that reconnecting does not clear a bad score.
type peerStats struct {
	topics    map[string]*topicStats
	behaviour float64
	gone      time.Time // when the peer left; zero while connected
}

type topicStats struct {
	inMesh          bool
	grafted         time.Time
	firstDeliveries float64
	invalid         float64
}

func (s *peerStats) topic(t string) *topicStats {
	ts := s.topics[t]
	if ts == nil {
		ts = &topicStats{}
		s.topics[t] = ts
	}
	return ts
}

// score computes p's score at now.
func (sp *ScoreParams) score(p peer.ID, s *peerStats, now time.Time) float64 {
	if s == nil {
		return 0
	}
	topics := 0.0
	for _, ts := range s.topics {
		topics += sp.TopicWeight * sp.topicScore(ts, now)
	}
	if topics > sp.TopicCap && sp.TopicCap > 0 {
		topics = sp.TopicCap
	}
	score := topics
	if sp.App != nil {
		score += sp.App(p)
	}
	if excess := s.behaviour - sp.BehaviourThreshold; excess > 0 {
		score += excess * excess * sp.BehaviourWeight
	}
	return score
}

func (sp *ScoreParams) topicScore(ts *topicStats, now time.Time) float64 {
	v := 0.0
	if ts.inMesh && sp.TimeInMeshQuantum > 0 {
		q := float64(now.Sub(ts.grafted)) / float64(sp.TimeInMeshQuantum)
		v += min(q, sp.TimeInMeshCap) * sp.TimeInMeshWeight
	}
	v += ts.firstDeliveries * sp.FirstDeliveriesWeight
	v += ts.invalid * ts.invalid * sp.InvalidWeight
	return v
}

// decay ages s's counters by one heartbeat; it reports whether s holds
// nothing any more.
func (sp *ScoreParams) decay(s *peerStats) bool {
	zero := func(v float64) float64 {
		if v < sp.DecayToZero {
			return 0
		}
		return v
	}
	s.behaviour = zero(s.behaviour * sp.BehaviourDecay)
	for t, ts := range s.topics {
		ts.firstDeliveries = zero(ts.firstDeliveries * sp.FirstDeliveriesDecay)
		ts.invalid = zero(ts.invalid * sp.InvalidDecay)
		if !ts.inMesh && ts.firstDeliveries == 0 && ts.invalid == 0 {
			delete(s.topics, t)
		}
	}
	return len(s.topics) == 0 && s.behaviour == 0
}

// firstDelivery credits a peer that delivered a new valid message.
func (sp *ScoreParams) firstDelivery(s *peerStats, topic string) {
	ts := s.topic(topic)
	ts.firstDeliveries = min(ts.firstDeliveries+1, sp.FirstDeliveriesCap)
}
