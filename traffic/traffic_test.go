package traffic

import (
	"slices"
	"testing"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

var t0 = time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// TestRateCurrentSpeed feeds a total that grows 1 MB/s for 20 s and then
// stops: the rate is the current speed, not the average since the start,
// and falls to 0 once a Window has passed without growth.
func TestRateCurrentSpeed(t *testing.T) {
	var r Rate
	if got := r.PerSecond(t0); got != 0 {
		t.Fatalf("empty rate %d, want 0", got)
	}
	for i := 0; i <= 80; i++ { // every 250 ms, as a fetch reports
		s := float64(i) / 4
		r.Observe(at(s), int64(s*1e6))
	}
	if got := r.PerSecond(at(20)); got < 950_000 || got > 1_050_000 {
		t.Errorf("while growing: %d B/s, want about 1e6", got)
	}
	// The transfer stalls: the fetch keeps reporting the same total.
	for i := 1; i <= 40; i++ {
		r.Observe(at(20+float64(i)/4), 20e6)
	}
	if got := r.PerSecond(at(30)); got != 0 {
		t.Errorf("10 s after the bytes stopped: %d B/s, want 0 (an average since start would say %d)", got, int64(20e6)/30)
	}
	// Nobody observes any more: the rate still reads 0 later.
	if got := r.PerSecond(at(100)); got != 0 {
		t.Errorf("without samples: %d B/s, want 0", got)
	}
}

// TestRateFallsWithoutSamples: a total last seen growing reads as
// stopped once a Window has passed, though nothing observed it since.
func TestRateFallsWithoutSamples(t *testing.T) {
	var r Rate
	for i := 0; i <= 10; i++ {
		r.Observe(at(float64(i)), int64(i)*1000)
	}
	if got := r.PerSecond(at(10)); got != 1000 {
		t.Errorf("rate %d, want 1000", got)
	}
	if got := r.PerSecond(at(10 + Window.Seconds() + 1)); got != 0 {
		t.Errorf("a window later: %d, want 0", got)
	}
}

// TestTableCounts counts blocks both ways over both protocols and checks
// per-peer figures, the node's totals, rates and forgetting.
func TestTableCounts(t *testing.T) {
	tb := NewTable()
	a, b := peer.ID("a"), peer.ID("b")
	ca, cb := tb.Peer(a), tb.Peer(b)
	if tb.Peer(a) != ca {
		t.Fatal("Peer returned a second counter for the same peer")
	}
	tb.Sample(at(0))
	for range 10 {
		ca.Received(Share, 1000)
		cb.Sent(Bitswap, 2, 500)
	}
	cb.Received(Share, 7)
	tb.Sample(at(1))
	sa, _ := tb.Stats(a, at(1))
	want := Stats{BlocksIn: 10, BytesIn: 10000, RateIn: 10000, Protocols: Share}
	if sa != want {
		t.Errorf("a: %+v, want %+v", sa, want)
	}
	sb, _ := tb.Stats(b, at(1))
	if sb.BlocksOut != 20 || sb.BytesOut != 5000 || sb.RateOut != 5000 || sb.BlocksIn != 1 || sb.Protocols.String() != "share+bitswap" {
		t.Errorf("b: %+v (%s)", sb, sb.Protocols)
	}
	tot := tb.Total(at(1))
	if tot.BytesIn != 10007 || tot.BytesOut != 5000 || tot.BlocksIn != 11 || tot.BlocksOut != 20 {
		t.Errorf("total %+v", tot)
	}
	tb.Forget(a)
	if _, ok := tb.Stats(a, at(1)); ok {
		t.Error("a forgotten peer still has figures")
	}
	ca.Received(Share, 1) // a stream still running counts for the node
	if got := tb.Total(at(1)).BytesIn; got != 10008 {
		t.Errorf("total in %d after a forgotten peer's block, want 10008", got)
	}
	var nilTable *Table
	nilTable.Peer(a).Received(Share, 1) // counts nothing, does not panic
}

// TestHistory: one point a second, the gap of a missed tick shared out,
// at most HistoryLen points.
func TestHistory(t *testing.T) {
	tb := NewTable()
	c := tb.Peer("p")
	tb.Sample(at(0))
	if in, _ := tb.History(); len(in) != 0 {
		t.Fatalf("%d points before a second passed", len(in))
	}
	c.Received(Share, 3000)
	c.Sent(Share, 1, 100)
	tb.Sample(at(1))
	tb.Sample(at(1.5)) // within the second: no point
	c.Received(Share, 6000)
	tb.Sample(at(4.1)) // three seconds: three points of 2000
	in, out := tb.History()
	if want := []int64{3000, 2000, 2000, 2000}; !slices.Equal(in, want) {
		t.Errorf("in %v, want %v", in, want)
	}
	if want := []int64{100, 0, 0, 0}; !slices.Equal(out, want) {
		t.Errorf("out %v, want %v", out, want)
	}
	for i := 5; i < 400; i++ {
		tb.Sample(at(float64(i)))
	}
	if in, _ := tb.History(); len(in) != HistoryLen || in[len(in)-1] != 0 {
		t.Errorf("%d points (last %d), want %d ending idle", len(in), in[len(in)-1], HistoryLen)
	}
}

// BenchmarkReceived is the cost a block adds to the exchange's hot path.
func BenchmarkReceived(b *testing.B) {
	c := NewTable().Peer("p")
	b.SetBytes(1 << 20)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Received(Share, 1<<20)
		}
	})
}
