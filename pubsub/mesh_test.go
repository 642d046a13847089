package pubsub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// testNet builds n nodes, each dialling k random others.
func testNet(t *testing.T, n, k int, tweak func(*Config)) []*testNode {
	t.Helper()
	net := newMemNet()
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = newTestNode(t, net, i, tweak)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, a := range nodes {
		for _, j := range rng.Perm(n)[:k] {
			if j != i {
				net.connect(a.h, nodes[j].h)
			}
		}
	}
	return nodes
}

// subscribeAll subscribes every node to topic and returns the subscriptions.
func subscribeAll(t *testing.T, nodes []*testNode, topic string) []*Subscription {
	t.Helper()
	subs := make([]*Subscription, len(nodes))
	for i, n := range nodes {
		tp, err := n.ps.Join(topic)
		if err != nil {
			t.Fatal(err)
		}
		if subs[i], err = tp.Subscribe(); err != nil {
			t.Fatal(err)
		}
	}
	return subs
}

// checkMeshes checks every live node's mesh degree is within [Dlo, Dhi]
// (or all its topic peers, when it knows fewer than Dlo), and that
// meshes are symmetric.
func checkMeshes(t *testing.T, nodes []*testNode, alive func(int) bool, topic string) {
	t.Helper()
	meshOf := map[peer.ID]map[peer.ID]struct{}{}
	for i, n := range nodes {
		if alive(i) {
			tp, _ := n.ps.Join(topic)
			meshOf[n.id] = setOf(tp.MeshPeers())
		}
	}
	for i, n := range nodes {
		if !alive(i) {
			continue
		}
		mesh := meshOf[n.id]
		known := len(n.ps.ListPeers(topic))
		if len(mesh) > 12 || len(mesh) < min(5, known) {
			t.Errorf("node %d: mesh of %d peers (knows %d), want [5, 12]", i, len(mesh), known)
		}
		for p := range mesh {
			if _, ok := meshOf[p][n.id]; !ok {
				t.Errorf("node %d has %s in its mesh, which does not have it", i, p.ShortString())
			}
		}
	}
}

// publishAndCount publishes from nodes[from] and waits until every live
// subscriber got it.
func publishAndCount(t *testing.T, nodes []*testNode, subs []*Subscription, alive func(int) bool, from int, data string) {
	t.Helper()
	tp, _ := nodes[from].ps.Join(subs[from].Topic())
	if err := tp.Publish(context.Background(), []byte(data)); err != nil {
		t.Fatal(err)
	}
	for i, s := range subs {
		if !alive(i) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for {
			m, err := s.Next(ctx)
			if err != nil {
				t.Fatalf("node %d never got %q: %v", i, data, err)
			}
			if string(m.Data) == data {
				break
			}
		}
		cancel()
	}
}

// TestMesh100 forms a mesh of 100 nodes on the fake clock, delivers over
// it (no flood publishing, so only the mesh and gossip carry messages),
// kills 20 nodes and checks the mesh recovers and still delivers.
func TestMesh100(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nodes := testNet(t, 100, 8, func(c *Config) { c.NoFloodPublish = true })
		subs := subscribeAll(t, nodes, "t")
		all := func(int) bool { return true }
		time.Sleep(5 * time.Second)
		synctest.Wait()
		checkMeshes(t, nodes, all, "t")
		publishAndCount(t, nodes, subs, all, 0, "first")

		dead := map[int]bool{}
		for _, i := range rand.New(rand.NewPCG(3, 4)).Perm(100)[:20] {
			dead[i] = true
			nodes[i].h.kill()
			nodes[i].ps.Close()
		}
		alive := func(i int) bool { return !dead[i] }
		// Delivery recovers within heartbeats; a node whose other peers
		// pruned it earlier (their meshes were full) may wait for its
		// backoffs (PruneBackoff, 1 min) to fill its mesh to Dlo again.
		time.Sleep(3 * time.Second)
		synctest.Wait()
		t.Logf("3 s after killing 20 nodes, %d of 80 have meshes below Dlo", belowDlo(nodes, alive, "t"))
		from := 0
		for dead[from] {
			from++
		}
		publishAndCount(t, nodes, subs, alive, from, "after churn")
		time.Sleep(time.Minute)
		synctest.Wait()
		checkMeshes(t, nodes, alive, "t")
		publishAndCount(t, nodes, subs, alive, from, "a minute after churn")
	})
}

// belowDlo counts the live nodes whose mesh is below Dlo though they know
// enough peers.
func belowDlo(nodes []*testNode, alive func(int) bool, topic string) int {
	n := 0
	for i, nd := range nodes {
		tp, _ := nd.ps.Join(topic)
		if alive(i) && len(tp.MeshPeers()) < 5 && len(nd.ps.ListPeers(topic)) >= 5 {
			n++
		}
	}
	return n
}

// TestMeshLeave: a node that unsubscribes leaves every mesh, and its
// peers do not graft it back.
func TestMeshLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nodes := testNet(t, 10, 9, nil)
		subs := subscribeAll(t, nodes, "t")
		time.Sleep(3 * time.Second)
		subs[0].Cancel()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		for i, n := range nodes[1:] {
			tp, _ := n.ps.Join("t")
			for _, p := range tp.MeshPeers() {
				if p == nodes[0].id {
					t.Errorf("node %d still meshes with the node that left", i+1)
				}
			}
		}
		if got := nodes[0].ps.Topics(); len(got) != 0 {
			t.Errorf("Topics after leaving: %v", got)
		}
	})
}

func BenchmarkPublish(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			net := newMemNet()
			n := newTestNode(b, net, 1, nil)
			tp, _ := n.ps.Join("bench")
			data := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := tp.Publish(context.Background(), data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
