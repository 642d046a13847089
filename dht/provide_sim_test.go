package dht_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/dht/dhttest"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/provide"
)

// sampledStore is a provider store for simulations of millions of
// records: it keeps the records of the sampled keys only (those the test
// looks up) and counts the others, so 20 million ADD_PROVIDERs take no
// memory.
type sampledStore struct {
	sample map[string]bool // read only
	count  *atomic.Int64   // shared by all nodes
	mu     sync.Mutex
	recs   map[string][]peer.AddrInfo
}

func (s *sampledStore) AddProvider(key []byte, prov peer.AddrInfo) error {
	s.count.Add(1)
	if !s.sample[string(key)] {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ai := range s.recs[string(key)] {
		if ai.ID == prov.ID {
			return nil
		}
	}
	s.recs[string(key)] = append(s.recs[string(key)], prov)
	return nil
}

func (s *sampledStore) Providers(key []byte, max int) []peer.AddrInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.recs[string(key)]
	return rs[:min(len(rs), max)]
}

// statsRouter is a provide.Router over one DHT that sums the figures of
// its Provide calls.
type statsRouter struct {
	d  *dht.DHT
	mu sync.Mutex
	st dht.ProvideStats
	// calls and slowest are the Provide calls and the longest one.
	calls   int
	slowest time.Duration
}

func (r *statsRouter) Provide(ctx context.Context, keys [][]byte) error {
	start := time.Now()
	st, err := r.d.ProvideStats(ctx, keys)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st = addStats(r.st, st)
	r.calls++
	r.slowest = max(r.slowest, time.Since(start))
	return err
}

func (r *statsRouter) FindProviders(ctx context.Context, key []byte, max int) <-chan peer.AddrInfo {
	return r.d.FindProviders(ctx, key, max)
}

func addStats(a, b dht.ProvideStats) dht.ProvideStats {
	a.Keys += b.Keys
	a.Lookups += b.Lookups
	a.LookupQueries += b.LookupQueries
	a.Requests += b.Requests
	a.Streams += b.Streams
	a.Failed += b.Failed
	return a
}

// provideSimSize returns the keys and nodes of TestProvideAtScale:
// SHARE_SIM_PROVIDE keys in 1000 nodes by hand, 20 000 in 300 in CI
// (5 000 under -race or -short).
func provideSimSize(t *testing.T) (keys, nodes int) {
	if v := os.Getenv("SHARE_SIM_PROVIDE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("SHARE_SIM_PROVIDE=%q: want a number of keys", v)
		}
		return n, 1000
	}
	if raceEnabled || testing.Short() {
		return 5000, 300
	}
	return 20000, 300
}

// provideSim is one run of TestProvideAtScale.
type provideSim struct {
	s         *sim
	keys      [][]byte
	provOf    []int // the provider of keys[i], an index of s.nodes
	sample    []int // indexes of keys looked up
	providers int
}

// TestProvideAtScale provides many keys from one node (and from four) of
// a simulated network with a 25 ms one-way latency, in simulated time
// (synctest), and reports one line of figures: keys/s, the time for all
// against the 22 h budget, messages per key (lookups and ADD_PROVIDERs),
// the same for one Provide per key (kubo's classic provider) on a sample,
// and the share of sampled keys that GET_PROVIDERS from random other
// nodes finds, with all alive, then with 20% dead after a reprovide sweep
// (provide.Provider.Run, 22 h of simulated time). It asserts on the
// finds and on the messages per key, not on time.
func TestProvideAtScale(t *testing.T) {
	for _, providers := range []int{1, 4} {
		t.Run(fmt.Sprintf("providers=%d", providers), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runProvideSim(t, providers) })
		})
	}
}

func runProvideSim(t *testing.T, providers int) {
	nKeys, nNodes := provideSimSize(t)
	samples := 2000
	if nNodes < 1000 {
		samples = 300
	}
	ps := &provideSim{providers: providers}
	ps.keys = make([][]byte, nKeys)
	ps.provOf = make([]int, nKeys)
	sampled := map[string]bool{}
	for i := range ps.keys {
		ps.keys[i] = randomKey()
		ps.provOf[i] = i % providers
		if i%max(1, nKeys/samples) == 0 {
			ps.sample = append(ps.sample, i)
			sampled[string(ps.keys[i])] = true
		}
	}
	var records atomic.Int64
	newStore := func() dht.ProviderStore {
		return &sampledStore{sample: sampled, count: &records, recs: map[string][]peer.AddrInfo{}}
	}
	ps.s = newSim(t, dhttest.NewNetwork(), dht.Protocol("share"), nNodes, simOptions{alpha: 10, queryTimeout: 10 * time.Second, store: newStore})
	ps.s.mem.Latency = 25 * time.Millisecond
	ctx := t.Context()

	st, took := ps.provide(t, ctx)
	perKey := float64(st.Messages()) / float64(st.Keys)
	oldPerKey, oldTook := ps.provideOneByOne(t, ctx, 50)
	found := ps.found(ctx)
	dead := ps.kill()
	sweep, slowest := ps.sweep(t, ctx)
	foundAfter := ps.found(ctx)
	rate := float64(nKeys) / took.Seconds()
	oldRate := 1 / oldTook.Seconds()
	t.Logf("provide-sim: nodes=%d providers=%d keys=%d latency=25ms time=%v (%.4f of 22h) keys/s=%.0f msgs/key=%.2f (lookups %d, %.3f lookup msgs/key, %.2f ADD_PROVIDER/key, %.3f streams/key, failed %d) records=%d | one-by-one: %.2f msgs/key, %v/key, keys/s=%.1f (%.0f/day), ratio %.0fx | found %.1f%% | %d dead, sweep: %.2f msgs/key, slowest region %v, found %.1f%%",
		nNodes, providers, nKeys, took.Round(time.Millisecond), took.Hours()/22, rate, perKey,
		st.Lookups, float64(st.LookupQueries)/float64(st.Keys), float64(st.Requests)/float64(st.Keys), float64(st.Streams)/float64(st.Keys), st.Failed,
		records.Load(), oldPerKey, oldTook.Round(time.Millisecond), oldRate, oldRate*86400, rate/oldRate,
		100*found, dead, float64(sweep.Messages())/float64(sweep.Keys), slowest.Round(time.Millisecond), 100*foundAfter)
	if found < 0.99 || foundAfter < 0.99 {
		t.Errorf("found %.3f of the sampled keys, %.3f after 20%% died and a sweep; want >= 0.99", found, foundAfter)
	}
	// K ADD_PROVIDERs a key; a lookup per region of 3K peers, so about
	// 5 a provider per 100 nodes however many keys (a lookup per key
	// would be thousands); many ADD_PROVIDERs a stream (one a stream
	// would be 20 streams a key).
	if st.Requests > 20*st.Keys || st.Lookups > providers*nNodes/15 || st.Streams*8 > st.Requests {
		t.Errorf("%d keys: %d lookups, %d ADD_PROVIDERs on %d streams; want <= %d lookups, <= 20 ADD_PROVIDERs a key, >= 8 a stream",
			st.Keys, st.Lookups, st.Requests, st.Streams, providers*nNodes/15)
	}
}

// provide provides every key from its provider, the providers in
// parallel, and returns the summed figures and the simulated time.
func (ps *provideSim) provide(t *testing.T, ctx context.Context) (dht.ProvideStats, time.Duration) {
	byProv := make([][][]byte, ps.providers)
	for i, k := range ps.keys {
		byProv[ps.provOf[i]] = append(byProv[ps.provOf[i]], k)
	}
	start := time.Now()
	stats := make([]dht.ProvideStats, ps.providers)
	var wg sync.WaitGroup
	for p := range ps.providers {
		wg.Go(func() {
			var err error
			if stats[p], err = ps.s.nodes[p].d.ProvideStats(ctx, byProv[p]); err != nil {
				t.Errorf("provider %d: %v", p, err)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	var sum dht.ProvideStats
	for _, st := range stats {
		sum = addStats(sum, st)
	}
	return sum, took
}

// provideOneByOne provides n new keys from node 0 one Provide call each,
// one after the other (as a provider that looks each key up does), and
// returns the messages and the simulated time per key.
func (ps *provideSim) provideOneByOne(t *testing.T, ctx context.Context, n int) (float64, time.Duration) {
	var sum dht.ProvideStats
	start := time.Now()
	for range n {
		st, err := ps.s.nodes[0].d.ProvideStats(ctx, [][]byte{randomKey()})
		if err != nil {
			t.Errorf("one key: %v", err)
		}
		sum = addStats(sum, st)
	}
	return float64(sum.Messages()) / float64(n), time.Since(start) / time.Duration(n)
}

// found returns the share of the sampled keys that a random node other
// than their provider finds their provider of.
func (ps *provideSim) found(ctx context.Context) float64 {
	var ok atomic.Int64
	ps.s.parallel(len(ps.sample), func(i int) {
		k := ps.sample[i]
		from := ps.providers + mrand.IntN(len(ps.s.nodes)-ps.providers)
		if find(ctx, ps.s.nodes[from], ps.keys[k], ps.s.nodes[ps.provOf[k]].ai.ID) {
			ok.Add(1)
		}
	})
	return float64(ok.Load()) / float64(len(ps.sample))
}

// kill makes 20% of the nodes dead, never a provider, and returns how
// many. The searchers of found are drawn again each time, among all the
// others: a dead one finds nothing, so they are drawn among the live.
func (ps *provideSim) kill() int {
	n := len(ps.s.nodes) / 5
	// The last n nodes die; found draws searchers below them.
	for _, node := range ps.s.nodes[len(ps.s.nodes)-n:] {
		ps.s.mem.SetFault(node.ai.ID, dhttest.Dead)
	}
	ps.s.nodes = ps.s.nodes[:len(ps.s.nodes)-n]
	return n
}

// sweep runs each provider's reprovide sweep (provide.Provider.Run) over
// its keys for one 22 h cycle and returns the figures of its Provide calls
// and the slowest.
func (ps *provideSim) sweep(t *testing.T, ctx context.Context) (dht.ProvideStats, time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	routers := make([]*statsRouter, ps.providers)
	for p := range ps.providers {
		routers[p] = &statsRouter{d: ps.s.nodes[p].d}
		mine := func(ctx context.Context, fn func([]byte) error) error {
			for i, k := range ps.keys {
				if ps.provOf[i] == p {
					if err := fn(k); err != nil {
						return err
					}
				}
			}
			return nil
		}
		prov, err := provide.New(provide.Config{Router: routers[p], Strategy: provide.All, Keys: mine})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { prov.Run(ctx) })
	}
	time.Sleep(time.Minute + 22*time.Hour - time.Second) // the initial delay and one cycle
	synctest.Wait()
	cancel()
	wg.Wait()
	var sum dht.ProvideStats
	var slowest time.Duration
	for _, r := range routers {
		sum = addStats(sum, r.st)
		slowest = max(slowest, r.slowest)
	}
	if sum.Keys != len(ps.keys) {
		t.Errorf("the sweep provided %d keys, want the %d", sum.Keys, len(ps.keys))
	}
	return sum, slowest
}
