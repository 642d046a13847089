package provide

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/p2p/peer"
)

func TestRegionBits(t *testing.T) {
	for _, tt := range []struct{ n, per, want int }{
		{0, 4096, 0}, {1, 4096, 0}, {4096, 4096, 0}, {4097, 4096, 1}, {8192, 4096, 1},
		{8193, 4096, 2}, {1_000_000, 4096, 8}, {1 << 40, 4096, maxRegionBits}, {100, 1, 7},
	} {
		if got := regionBits(tt.n, tt.per); got != tt.want {
			t.Errorf("regionBits(%d, %d) = %d, want %d", tt.n, tt.per, got, tt.want)
		}
	}
}

// seededKeys returns n multihash keys from a fixed seed.
func seededKeys(n int) [][]byte {
	r := rand.NewChaCha8([32]byte{22})
	keys := make([][]byte, n)
	for i := range keys {
		k := make([]byte, 34)
		k[0], k[1] = 0x12, 0x20
		r.Read(k[2:])
		keys[i] = k
	}
	return keys
}

// TestRegionOf: the regions of 2^b are the leading b bits of the
// keyspace point, so they partition the keys and each is a contiguous
// range of the sorted key space.
func TestRegionOf(t *testing.T) {
	keys := seededKeys(4000)
	for _, b := range []int{0, 1, 4, 9, maxRegionBits} {
		counts := map[int]int{}
		for _, k := range keys {
			r := regionOf(k, b)
			at := dht.KeyOf(k)
			lead := int(uint32(at[0])<<24|uint32(at[1])<<16|uint32(at[2])<<8|uint32(at[3])) >> (32 - b)
			if b == 0 {
				lead = 0
			}
			if r != lead || r < 0 || r >= 1<<b {
				t.Fatalf("b=%d: region %d, leading bits %d", b, r, lead)
			}
			counts[r]++
		}
		if b == 4 && len(counts) != 16 {
			t.Errorf("4000 keys fill %d of 16 regions", len(counts))
		}
	}
}

func TestSweepStateEncoding(t *testing.T) {
	s := sweepState{Start: time.Unix(1700000000, 123), Bits: 8, Next: 200}
	got, err := unmarshalSweepState(s.marshal())
	if err != nil || !got.Start.Equal(s.Start) || got.Bits != s.Bits || got.Next != s.Next {
		t.Fatalf("round trip of %+v: %+v, %v", s, got, err)
	}
	bad := [][]byte{nil, {1}, append([]byte{2}, s.marshal()[1:]...), append(s.marshal(), 0),
		sweepState{Bits: 2, Next: 4}.marshal(), sweepState{Bits: maxRegionBits + 1}.marshal()}
	for _, b := range bad {
		if _, err := unmarshalSweepState(b); err == nil {
			t.Errorf("%x decodes", b)
		}
	}
}

func TestSweepResume(t *testing.T) {
	const iv, delay = 8 * time.Hour, time.Minute
	start := time.Unix(1_000_000, 0)
	s := sweepState{Start: start, Bits: 3, Next: 5} // region 5 due at start+5h
	for _, tt := range []struct {
		name    string
		now     time.Time
		wantDue time.Time
	}{
		{"in time", start.Add(4 * time.Hour), start.Add(5 * time.Hour)},
		{"late", start.Add(30 * time.Hour), start.Add(30*time.Hour + delay)},
		{"clock went back", start.Add(-20 * time.Hour), start.Add(-20*time.Hour + delay)},
	} {
		r := s.resume(tt.now, iv, delay)
		if due := r.due(r.Next, iv); !due.Equal(tt.wantDue) || r.Next != 5 || r.Bits != 3 {
			t.Errorf("%s: region %d of 2^%d due at %v, want region 5 of 2^3 at %v", tt.name, r.Next, r.Bits, due.Sub(start), tt.wantDue.Sub(start))
		}
		// The regions after it keep their pace.
		if gap := r.due(r.Next+1, iv).Sub(r.due(r.Next, iv)); gap != time.Hour {
			t.Errorf("%s: regions %v apart, want 1h", tt.name, gap)
		}
	}
}

// sweepRouter records each Provide: when, and which keys.
type sweepRouter struct {
	mu    sync.Mutex
	calls []sweepCall
}

type sweepCall struct {
	at   time.Time
	keys [][]byte
}

func (r *sweepRouter) Provide(_ context.Context, keys [][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, sweepCall{time.Now(), keys})
	return nil
}

func (r *sweepRouter) FindProviders(context.Context, []byte, int) <-chan peer.AddrInfo {
	c := make(chan peer.AddrInfo)
	close(c)
	return c
}

func (r *sweepRouter) take() []sweepCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// runSweep runs a provider over keys until stop is called.
func runSweep(t *testing.T, r Router, keys [][]byte, state *memKV) (stop func()) {
	t.Helper()
	cfg := Config{
		Router: r, Strategy: All, Keys: eachOf(keys),
		Interval: 8 * time.Hour, InitialDelay: time.Minute, RegionKeys: 4096,
	}
	if state != nil {
		cfg.State = state
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// checkRegions checks that calls announced regions first, first+1, ...
// of 8, each complete, at start + region hours.
func checkRegions(t *testing.T, calls []sweepCall, keys [][]byte, first int, start time.Time) {
	t.Helper()
	want := map[int]int{}
	for _, k := range keys {
		want[regionOf(k, 3)]++
	}
	for i, c := range calls {
		r := first + i
		if d := c.at.Sub(start); d != time.Duration(r)*time.Hour {
			t.Errorf("region %d announced at %v, want %dh", r, d, r)
		}
		for _, k := range c.keys {
			if got := regionOf(k, 3); got != r%8 {
				t.Fatalf("call for region %d has a key of region %d", r, got)
			}
		}
		if len(c.keys) != want[r%8] {
			t.Errorf("region %d: %d keys announced, want %d", r, len(c.keys), want[r%8])
		}
	}
}

// TestSweepSchedule: 20 000 keys in regions of about 4096 are 8 regions,
// one an hour of the 8 h interval, each once per cycle, the first after
// the initial delay; the next cycle follows at the same pace.
func TestSweepSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := seededKeys(20000)
		r := &sweepRouter{}
		start := time.Now().Add(time.Minute)
		stop := runSweep(t, r, keys, nil)
		time.Sleep(time.Minute + 7*time.Hour + time.Second)
		synctest.Wait()
		calls := r.take()
		if len(calls) != 8 {
			t.Fatalf("%d regions announced in the first cycle, want 8", len(calls))
		}
		checkRegions(t, calls, keys, 0, start)
		time.Sleep(8 * time.Hour)
		synctest.Wait()
		checkRegions(t, r.take(), keys, 8, start)
		stop()
	})
}

// TestSweepRestart: a provider stopped after three regions goes on at the
// fourth when restarted, in its time; one restarted after missing two goes
// on with the first it missed, after the initial delay, then at the usual
// pace. Neither announces the regions done before.
func TestSweepRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := seededKeys(20000)
		state := &memKV{m: map[string][]byte{}}
		r := &sweepRouter{}
		start := time.Now().Add(time.Minute)
		stop := runSweep(t, r, keys, state)
		time.Sleep(time.Minute + 2*time.Hour + time.Second) // regions 0, 1, 2
		synctest.Wait()
		stop()
		if n := len(r.take()); n != 3 {
			t.Fatalf("%d regions before the stop, want 3", n)
		}
		stop = runSweep(t, r, keys, state)
		time.Sleep(time.Hour) // region 3 at 3h
		synctest.Wait()
		stop()
		checkRegions(t, r.take(), keys, 3, start)

		time.Sleep(2 * time.Hour) // off during regions 4 and 5
		late := time.Now()
		stop = runSweep(t, r, keys, state)
		time.Sleep(time.Minute + time.Hour) // region 4 after the delay, 5 an hour on
		synctest.Wait()
		stop()
		calls := r.take()
		if len(calls) != 2 {
			t.Fatalf("%d regions after the late restart, want 2 (4 and 5)", len(calls))
		}
		checkRegions(t, calls, keys, 4, late.Add(time.Minute).Add(-4*time.Hour))
	})
}
