package pubsub

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
)

// attacker is a peer that writes raw RPCs to a victim and drains what
// the victim sends it.
type attacker struct {
	h    *memHost
	id   peer.ID
	priv []byte
	s    share.Stream
}

func newAttacker(t *testing.T, n *memNet, victim *testNode, seed int) *attacker {
	t.Helper()
	priv, id := testKeyN(t, seed)
	h := n.add(id)
	h.SetHandler(testProto, func(s share.Stream) { io.Copy(io.Discard, s) })
	n.connect(h, victim.h)
	s, err := h.NewStream(context.Background(), victim.id, testProto)
	if err != nil {
		t.Fatal(err)
	}
	return &attacker{h: h, id: id, priv: priv, s: s}
}

// send writes r; false once the victim cut the stream.
func (a *attacker) send(r *RPC) bool {
	_, err := a.s.Write(frame(r))
	return err == nil
}

func (a *attacker) message(topic string, seq uint64, data string) *Message {
	m := &Message{From: []byte(a.id), Data: []byte(data), Topic: topic, Seqno: binary.BigEndian.AppendUint64(nil, seq)}
	sign(m, a.priv)
	return m
}

// victimNet is a victim subscribed to topic "t" with honest peers.
func victimNet(t *testing.T, honest int) (*memNet, *testNode, []*testNode, *Subscription) {
	n := newMemNet()
	v := newTestNode(t, n, 0, nil)
	var peers []*testNode
	for i := 1; i <= honest; i++ {
		p := newTestNode(t, n, i, nil)
		n.connect(p.h, v.h)
		tp, _ := p.ps.Join("t")
		if _, err := tp.Subscribe(); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	tp, _ := v.ps.Join("t")
	sub, err := tp.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	return n, v, peers, sub
}

func inMesh(n *testNode, topic string, p peer.ID) bool {
	tp, _ := n.ps.Join(topic)
	for _, q := range tp.MeshPeers() {
		if q == p {
			return true
		}
	}
	return false
}

// TestInvalidSignatures: a peer that sends forged messages is scored
// down, leaves the mesh, is graylisted, and none of its messages reach
// the subscriber.
func TestInvalidSignatures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, v, _, sub := victimNet(t, 3)
		a := newAttacker(t, n, v, 100)
		a.send(&RPC{Subs: []SubOpt{{Subscribe: true, Topic: "t"}}, Control: Control{Graft: []string{"t"}}})
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if !inMesh(v, "t", a.id) {
			t.Fatal("the attacker's GRAFT was not accepted before it misbehaved")
		}
		for i := range 1000 {
			m := a.message("t", uint64(i+1), "forged")
			m.Signature[0] ^= 1
			if !a.send(&RPC{Publish: []*Message{m}}) {
				break
			}
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if s := v.ps.Score(a.id); s >= DefaultScore().GraylistThreshold {
			t.Errorf("forger's score %v, want below the graylist threshold", s)
		}
		if inMesh(v, "t", a.id) {
			t.Error("forger still in the mesh")
		}
		if n := sub.queued(); n != 0 {
			t.Errorf("%d forged messages delivered", n)
		}
		// Graylisted: even its valid messages are ignored now.
		a.send(&RPC{Publish: []*Message{a.message("t", 5000, "valid")}})
		time.Sleep(time.Second)
		synctest.Wait()
		if sub.queued() != 0 {
			t.Error("a graylisted peer's message was delivered")
		}
	})
}

// TestOversize: an RPC above MaxMessageSize cuts the stream before its
// body is read (nothing is allocated for it) and costs a behaviour point.
func TestOversize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, v, _, _ := victimNet(t, 1)
		a := newAttacker(t, n, v, 100)
		var b []byte
		b = binary.AppendUvarint(b, 64<<20)
		a.s.Write(b)
		go io.Copy(io.Discard, a.s) // let the victim's reset through
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if _, err := a.s.Write([]byte("more")); err == nil {
			t.Error("the victim still reads a stream that announced 64 MiB")
		}
		v.ps.mu.Lock()
		pen := v.ps.statsLocked(a.id).behaviour
		v.ps.mu.Unlock()
		if pen < 1 {
			t.Errorf("behaviour penalty %v, want 1", pen)
		}
		// A message too large to publish is refused locally.
		tp, _ := v.ps.Join("t")
		if err := tp.Publish(context.Background(), make([]byte, 1<<20)); err == nil {
			t.Error("published a 1 MiB message (the RPC exceeds 1 MiB)")
		}
	})
}

// TestGraftPruneLoop: a peer that keeps grafting during its backoff is
// scored negative and kept out of the mesh.
func TestGraftPruneLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, v, _, _ := victimNet(t, 3)
		a := newAttacker(t, n, v, 100)
		a.send(&RPC{Subs: []SubOpt{{Subscribe: true, Topic: "t"}}})
		for range 10 {
			a.send(&RPC{Control: Control{Graft: []string{"t"}}})
			a.send(&RPC{Control: Control{Prune: []Prune{{Topic: "t"}}}})
			time.Sleep(100 * time.Millisecond)
		}
		a.send(&RPC{Control: Control{Graft: []string{"t"}}})
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if s := v.ps.Score(a.id); s >= 0 {
			t.Errorf("graft/prune looper's score %v, want negative", s)
		}
		if inMesh(v, "t", a.id) {
			t.Error("graft/prune looper in the mesh")
		}
	})
}

// TestFloods: floods of subscriptions, IHAVEs and duplicates keep the
// victim's state bounded, and IHAVEs whose promises are not kept cost
// the flooder.
func TestFloods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, v, _, sub := victimNet(t, 1)
		a := newAttacker(t, n, v, 100)
		subs := make([]SubOpt, 20000)
		for i := range subs {
			subs[i] = SubOpt{Subscribe: true, Topic: string(binary.AppendUvarint([]byte("topic-"), uint64(i)))}
		}
		a.send(&RPC{Subs: subs})
		ids := make([]string, 6000)
		for i := range ids {
			ids[i] = string(binary.BigEndian.AppendUint64([]byte(a.id), uint64(i)))
		}
		// Each heartbeat the victim heeds 10 IHAVEs and asks for 5000 IDs
		// at most, and holds the flooder to one promise.
		for range 10 {
			for range 20 {
				a.send(&RPC{Control: Control{IHave: []IHave{{Topic: "t", IDs: ids}}}})
			}
			time.Sleep(time.Second)
		}
		dup := a.message("t", 1, "once")
		for range 1000 {
			a.send(&RPC{Publish: []*Message{dup}})
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		v.ps.mu.Lock()
		topics := len(v.ps.topics)
		v.ps.mu.Unlock()
		if topics > DefaultMaxTopicsPerPeer+10 {
			t.Errorf("victim holds %d topics after a flood of 20000 subscriptions", topics)
		}
		if sub.queued() != 1 {
			t.Errorf("%d copies of one message delivered, want 1", sub.queued())
		}
		if s := v.ps.Score(a.id); s >= 0 {
			t.Errorf("IHAVE flooder's score %v, want negative (broken promises)", s)
		}
	})
}
