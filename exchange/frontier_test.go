package exchange

import (
	"fmt"
	"testing"
	"time"

	"github.com/share-p2p/share/dag"
)

// TestFrontierBounded fetches a DAG of 30 000 leaves (a file of 64-byte
// chunks, 174 to a node): the scheduler never knows of many more than
// frontierHigh missing blocks (one inner node's children per verifier
// beyond it), yet every block arrives, streamed to a reader or stored.
func TestFrontierBounded(t *testing.T) {
	const leaves = 30_000
	root, src, data := makeDAG(t, leaves*64, 64, 21)
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			n := newMemNet()
			prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
			out := dag.NewMemStore()
			client := newTestPeer(t, n, "client", out, linkOpts{}, Config{})
			s := client.e.NewSession(testContext(t, 60*time.Second), root, SessionOptions{
				Local: out, Putter: out, Providers: providerIDs(prov), Stream: stream,
			})
			if stream {
				checkFile(t, s, root, data)
			}
			if err := s.Wait(); err != nil {
				t.Fatal(err)
			}
			if out.Len() != src.Len() {
				t.Fatalf("%d blocks stored, want %d", out.Len(), src.Len())
			}
			checkFile(t, out, root, data)
			s.mu.Lock()
			peak, left := s.peakMissing, len(s.deferred)
			s.mu.Unlock()
			if limit := frontierHigh + 4*dag.MaxLinks; peak > limit {
				t.Errorf("the scheduler knew of %d missing blocks at once, want at most %d", peak, limit)
			}
			if left != 0 {
				t.Errorf("%d deferred nodes left", left)
			}
		})
	}
}

// BenchmarkFetchSmallLeaves is a session's cost per block of a DAG of
// small leaves over the in-memory network.
func BenchmarkFetchSmallLeaves(b *testing.B) {
	const leaves = 20_000
	root, src, _ := makeDAG(b, leaves*1024, 1024, 22)
	b.SetBytes(leaves * 1024)
	for b.Loop() {
		n := newMemNet()
		prov := newTestPeer(b, n, "prov", src, linkOpts{}, Config{})
		out := dag.NewMemStore()
		client := newTestPeer(b, n, "client", out, linkOpts{}, Config{})
		s := client.e.NewSession(testContext(b, time.Minute), root, SessionOptions{
			Local: out, Putter: out, Providers: providerIDs(prov),
		})
		if err := s.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*leaves), "ns/block")
}
