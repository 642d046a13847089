package exchange

import (
	"testing"
	"time"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/traffic"
)

// TestTrafficPerPeer: one session fetches from a share provider and a
// want-wire provider at once; the client's table counts what each sent
// over which protocol (the session's first copies, as Progress.From
// says), and the share provider's server counts what it sent the client.
func TestTrafficPerPeer(t *testing.T) {
	root, src, data := makeDAG(t, 4<<20, 64<<10, 51)
	n := newMemNet()
	provTraffic := traffic.NewTable()
	sh := newTestPeer(t, n, "share1", src, linkOpts{rate: 50e6}, Config{Traffic: provTraffic})
	w := newFakeWire()
	w.add(t, "bs1", src).perBlock = 2 * time.Millisecond
	clientTraffic := traffic.NewTable()
	client := newWireClient(t, n, w, Config{Traffic: clientTraffic})
	out := dag.NewMemStore()
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Putter: out, Providers: []peer.ID{sh.h.id, "bs1"}})
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
	now := time.Now()
	var blocks, bytes int64
	for _, f := range s.Progress().From {
		st, ok := clientTraffic.Stats(f.Peer, now)
		want := traffic.Share
		if f.Peer == "bs1" {
			want = traffic.Bitswap
		}
		if !ok || st.BlocksIn != int64(f.Blocks) || st.BytesIn != f.Bytes || st.Protocols != want {
			t.Errorf("%s: table says %+v (ok %v), session says %d blocks, %d bytes over %s", f.Peer, st, ok, f.Blocks, f.Bytes, want)
		}
		blocks += st.BlocksIn
		bytes += st.BytesIn
	}
	if tot := clientTraffic.Total(now); tot.BlocksIn != blocks || tot.BytesIn != bytes || tot.BytesIn != s.Progress().Bytes {
		t.Errorf("client total %+v, want %d blocks, %d bytes", tot, blocks, bytes)
	}
	served, _ := provTraffic.Stats(client.h.id, now)
	got, _ := clientTraffic.Stats(sh.h.id, now)
	// The provider counts every block it wrote, the client first copies:
	// endgame duplicates make the provider's count the larger.
	if served.BlocksOut == 0 || served.BlocksOut < got.BlocksIn || served.Protocols != traffic.Share {
		t.Errorf("share provider counted %+v sent to the client, which got %d blocks from it", served, got.BlocksIn)
	}
}
