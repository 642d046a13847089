package pubsub

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// TestTopicMemory: the heap a subscribed topic costs a node, with two
// peers in its mesh, stays small (the daemon's figure with 1000 topics,
// without the API streams). It logs the figure.
func TestTopicMemory(t *testing.T) {
	const topics = 1000
	synctest.Test(t, func(t *testing.T) {
		nodes := testNet(t, 3, 3, nil)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		names := make([]string, topics)
		for i := range names {
			names[i] = fmt.Sprintf("topic-%04d", i)
		}
		before := heapInUse()
		for _, n := range nodes {
			if _, err := n.ps.SubscribeTopics(names...); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 30*time.Second, "every mesh formed", func() bool {
			for _, n := range nodes {
				tp, _ := n.ps.Join(names[topics-1])
				if len(tp.MeshPeers()) != 2 {
					return false
				}
			}
			return true
		})
		time.Sleep(5 * time.Second) // heartbeats: scores, backoffs, gossip
		synctest.Wait()
		per := (heapInUse() - before) / (3 * topics)
		t.Logf("%d B of heap per subscribed topic and node (2 mesh peers)", per)
		if per > 8<<10 {
			t.Errorf("a topic costs %d B of heap, want at most 8 KiB", per)
		}
	})
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
