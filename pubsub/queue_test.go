package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// TestPublishWaits: a peer that stops reading (its validator blocks)
// fills this node's queue for it; Publish then waits for room instead of
// dropping, every message arrives once the peer reads again, and a
// Publish whose context ends while it waits says so.
func TestPublishWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		pub := newTestNode(t, n, 1, func(c *Config) { c.QueueSize = 2 })
		rcv := newTestNode(t, n, 2, nil)
		n.connect(pub.h, rcv.h)
		release := make(chan struct{})
		rcv.ps.RegisterValidator("t", func(ctx context.Context, _ peer.ID, _ *Message) Result {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return Accept
		})
		tr, _ := rcv.ps.Join("t")
		sub, err := tr.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the publisher to know the subscriber", func() bool {
			return len(pub.ps.ListPeers("t")) == 1
		})
		tp, _ := pub.ps.Join("t")
		const total = 40
		data := []byte(strings.Repeat("x", 4<<10))
		done := make(chan error)
		go func() {
			for range total {
				if err := tp.Publish(context.Background(), data); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		synctest.Wait() // the publisher blocks on the full queue
		select {
		case err := <-done:
			t.Fatalf("all %d published with the peer not reading: %v", total, err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		other, _ := pub.ps.Join("t")
		// A second publisher waits too, and gives up with its context.
		if err := other.Publish(ctx, data); err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publish past its deadline: %v, want a deadline error", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for i := range total {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := sub.Next(ctx)
			cancel()
			if err != nil {
				t.Fatalf("message %d of %d: %v", i+1, total, err)
			}
		}
		s := pub.ps.Stats()
		if s.PublishWaits == 0 || s.QueueDrops != 1 {
			t.Errorf("publisher's stats %+v: want waits, and one drop (the expired Publish)", s)
		}
	})
}

// TestSubscriptionBounds: a subscription nobody reads keeps the first
// SubscriptionBuffer messages (or SubscriptionBytes), in order, and
// counts the rest dropped.
func TestSubscriptionBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name         string
			count, bytes int
			keep         int
		}{
			{"count", 4, 1 << 20, 4},
			{"bytes", 100, 3 * (100 + 128), 3},
		} {
			v := newTestNode(t, newMemNet(), 1, func(c *Config) {
				c.SubscriptionBuffer, c.SubscriptionBytes = tc.count, tc.bytes
			})
			tp, _ := v.ps.Join("t")
			sub, err := tp.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				if err := tp.Publish(context.Background(), fmt.Appendf(nil, "%0100d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if got := sub.Dropped(); got != int64(10-tc.keep) {
				t.Errorf("%s: %d dropped, want %d", tc.name, got, 10-tc.keep)
			}
			for i := range tc.keep {
				m, err := sub.Next(context.Background())
				if err != nil || string(m.Data) != fmt.Sprintf("%0100d", i) {
					t.Fatalf("%s: message %d: %v %v", tc.name, i, m, err)
				}
			}
			if n := sub.queued(); n != 0 {
				t.Errorf("%s: %d left, want none", tc.name, n)
			}
		}
	})
}

// TestSubscribeTopics: one subscription gets the messages of several
// topics; cancelling it leaves them all.
func TestSubscribeTopics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newTestNode(t, newMemNet(), 1, nil)
		sub, err := v.ps.SubscribeTopics("a", "b")
		if err != nil {
			t.Fatal(err)
		}
		if got := v.ps.Topics(); len(got) != 2 {
			t.Errorf("Topics %v, want a and b", got)
		}
		for _, name := range []string{"a", "b"} {
			tp, _ := v.ps.Join(name)
			tp.Publish(context.Background(), []byte(name))
		}
		for _, want := range []string{"a", "b"} {
			m, err := sub.Next(context.Background())
			if err != nil || m.Topic != want || string(m.Data) != want {
				t.Fatalf("got %v %v, want a message of %s", m, err, want)
			}
		}
		sub.Cancel()
		if got := v.ps.Topics(); len(got) != 0 {
			t.Errorf("Topics after Cancel %v", got)
		}
		if _, err := v.ps.SubscribeTopics(); !errors.Is(err, ErrBadTopic) {
			t.Errorf("no topic: %v", err)
		}
	})
}

// TestStaleGraft: an RPC read on the stream of a peer already removed
// (its writer failed while the RPC was being handled) does not graft it
// back: the mesh would hold a peer with no queue, and leaving the topic
// dereferenced it (a panic seen with 1000 topics in pubsub-rss.sh).
func TestStaleGraft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newTestNode(t, newMemNet(), 1, nil)
		tp, _ := v.ps.Join("t")
		sub, err := tp.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		_, id := testKeyN(t, 2)
		stale := &peerConn{id: id, topics: map[string]struct{}{}, out: newOutQueue(1, 1)}
		v.ps.handleRPC(stale, &RPC{Subs: []SubOpt{{Subscribe: true, Topic: "t"}}, Control: Control{Graft: []string{"t"}}}, nil)
		if inMesh(v, "t", id) || len(v.ps.ListPeers("t")) != 0 {
			t.Fatal("a removed peer's RPC grafted it into the mesh")
		}
		sub.Cancel()
	})
}
