package fetch

import (
	"testing"
	"time"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/exchange"
)

// TestTransferRateIsCurrent: a transfer that moved 2 MB/s for 30 s and
// then stalls shows its current speed, 0 within a few seconds, not the
// average since it started (which the status page used to show: 1.5 MB/s
// at 40 s, falling slowly for ever).
func TestTransferRateIsCurrent(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	ts := transfers{now: func() time.Time { return now }}
	tr := ts.start(dag.Sum(dag.Raw, []byte("root")))
	var bytes int64
	tick := func(grow int64) {
		now = now.Add(250 * time.Millisecond) // the session reports every 250 ms
		bytes += grow
		ts.update(tr, exchange.Progress{Bytes: bytes, Peers: 2}, 60e6)
	}
	for range 120 {
		tick(500_000)
	}
	if got := ts.list()[0].Rate; got < 1.9e6 || got > 2.1e6 {
		t.Fatalf("rate while moving: %d B/s, want about 2e6", got)
	}
	for range 40 { // 10 s of a stalled session still reporting
		tick(0)
	}
	l := ts.list()
	if len(l) != 1 || l[0].Bytes != 60e6 || l[0].Peers != 2 {
		t.Fatalf("list %+v", l)
	}
	if avg := l[0].Bytes / int64(now.Sub(l[0].Started).Seconds()); l[0].Rate != 0 {
		t.Errorf("stalled for 10 s: rate %d B/s, want 0 (the average since start is %d)", l[0].Rate, avg)
	}
	ts.end(tr)
	if len(ts.list()) != 0 {
		t.Fatal("an ended transfer is still listed")
	}
}
