package pubsub

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// TestValidator: a topic's validator judges received and own messages;
// Reject scores the sender down, Ignore does not.
func TestValidator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, v, peers, sub := victimNet(t, 1)
		p := peers[0]
		v.ps.RegisterValidator("t", func(_ context.Context, from peer.ID, m *Message) Result {
			switch string(m.Data) {
			case "bad":
				return Reject
			case "stale":
				return Ignore
			}
			return Accept
		})
		time.Sleep(2 * time.Second)
		tp, _ := p.ps.Join("t")
		for _, d := range []string{"stale", "bad", "good"} {
			if err := tp.Publish(context.Background(), []byte(d)); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m, err := sub.Next(ctx)
		if err != nil || string(m.Data) != "good" {
			t.Fatalf("first delivered %v, %v; want good", m, err)
		}
		if m.Author() != p.id || m.ReceivedFrom() != p.id || m.SeqNo() == 0 || m.ID() == "" {
			t.Errorf("message fields: author %s from %s seqno %d", m.Author(), m.ReceivedFrom(), m.SeqNo())
		}
		v.ps.mu.Lock()
		invalid := v.ps.statsLocked(p.id).topic("t").invalid
		v.ps.mu.Unlock()
		if invalid != 1 {
			t.Errorf("invalid count %v, want 1 (the rejected message; ignored ones are free)", invalid)
		}
		vt, _ := v.ps.Join("t")
		if err := vt.Publish(context.Background(), []byte("bad")); err == nil {
			t.Error("own message the validator rejects was published")
		}
	})
}

// TestOwnDelivery: a node's own subscribers see its messages; Topics and
// ListPeers report subscriptions.
func TestOwnDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, v, peers, sub := victimNet(t, 2)
		time.Sleep(2 * time.Second)
		tp, _ := v.ps.Join("t")
		if err := tp.Publish(context.Background(), []byte("mine")); err != nil {
			t.Fatal(err)
		}
		m, err := sub.Next(context.Background())
		if err != nil || string(m.Data) != "mine" || m.ReceivedFrom() != v.id {
			t.Fatalf("own message: %v, %v", m, err)
		}
		if got := v.ps.Topics(); len(got) != 1 || got[0] != "t" {
			t.Errorf("Topics %v", got)
		}
		if got := v.ps.ListPeers("t"); len(got) != len(peers) {
			t.Errorf("ListPeers %d, want %d", len(got), len(peers))
		}
		sub.Cancel()
		if _, err := sub.Next(context.Background()); err != ErrCancelled {
			t.Errorf("Next after Cancel: %v", err)
		}
	})
}

func TestSeenCache(t *testing.T) {
	c := newSeenCache(time.Minute, 3)
	now := time.Unix(0, 0)
	for _, id := range []string{"a", "b", "c"} {
		if !c.add(id, now) {
			t.Fatalf("%s seen before", id)
		}
	}
	if c.add("a", now) {
		t.Error("a added twice")
	}
	c.add("d", now) // over max: a goes
	if c.has("a") || !c.has("d") {
		t.Error("the oldest ID was not forgotten first")
	}
	c.expire(now.Add(time.Minute))
	if len(c.ids) != 0 {
		t.Errorf("%d IDs after their TTL", len(c.ids))
	}
}

func TestMsgCache(t *testing.T) {
	c := newMsgCache(3, 2)
	m := &Message{Topic: "t"}
	c.put("1", m, nil)
	c.shift()
	c.put("2", m, nil)
	if got := c.gossipIDs("t", 10); len(got) != 2 {
		t.Errorf("gossip %v, want both", got)
	}
	c.shift()
	if got := c.gossipIDs("t", 10); len(got) != 1 || got[0] != "2" {
		t.Errorf("gossip %v, want [2]", got)
	}
	c.shift()
	if e, _ := c.get("1", ""); e != nil {
		t.Error("message still cached after HistoryLength windows")
	}
	if e, n := c.get("2", "p"); e == nil || n != 1 {
		t.Errorf("get 2: %v %d", e, n)
	}
}

// queued returns how many messages wait in s.
func (s *Subscription) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.head
}

// TestMeetConnected: two hosts connected before pubsub starts on either
// (identify told no watcher of the other) still meet: a subscription on
// one reaches the other and a message comes back, without a new
// connection.
func TestMeetConnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		_, ida := testKeyN(t, 1)
		_, idb := testKeyN(t, 2)
		ha, hb := n.add(ida), n.add(idb)
		n.connect(ha, hb)
		a := startTestNode(t, ha, 1, nil)
		b := startTestNode(t, hb, 2, nil)
		tb, _ := b.ps.Join("t")
		sub, err := tb.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "a learns of b's subscription", func() bool {
			return slices.Contains(a.ps.ListPeers("t"), b.id)
		})
		ta, _ := a.ps.Join("t")
		if err := ta.Publish(context.Background(), []byte("hi")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if m, err := sub.Next(ctx); err != nil || string(m.Data) != "hi" {
			t.Fatalf("b got %v, %v; want hi", m, err)
		}
	})
}
