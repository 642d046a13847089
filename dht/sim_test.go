package dht_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/dht/dhttest"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/provide"
)

// simNode is one DHT node of a simulation.
type simNode struct {
	ai     peer.AddrInfo
	d      *dht.DHT
	store  *provide.Store
	values *dht.ValueStore
}

// sim is a network of DHT nodes on a dhttest.Network.
type sim struct {
	mem   *dhttest.Network
	proto string
	nodes []*simNode

	mu    sync.Mutex
	stats []dht.LookupStats
}

func randomID(t testing.TB) peer.ID {
	t.Helper()
	pub := make([]byte, 32)
	rand.Read(pub)
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func randomKey() []byte {
	k := make([]byte, 34)
	k[0], k[1] = 0x12, 0x20 // sha2-256 multihash
	rand.Read(k[2:])
	return k
}

type simOptions struct {
	alpha        int
	queryTimeout time.Duration
	mode         dht.Mode
	refresh      time.Duration // 0: no refresh loop
	// store, if set, makes each node's provider store (simNode.store is
	// then nil).
	store func() dht.ProviderStore
}

// addNode starts a node on the sim's network.
func (s *sim) addNode(t testing.TB, o simOptions) *simNode {
	t.Helper()
	n := len(s.nodes) + 1
	ai := peer.AddrInfo{ID: randomID(t)}
	if o.mode != dht.ModeClient {
		ai.Addrs = []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", n>>16&255, n>>8&255, n&255))}
	}
	var st *provide.Store
	var store dht.ProviderStore
	if o.store != nil {
		store = o.store()
	} else {
		var err error
		if st, err = provide.NewStore(provide.StoreConfig{}); err != nil {
			t.Fatal(err)
		}
		store = st
	}
	d, err := dht.New(dht.Config{
		Self:            func() peer.AddrInfo { return ai },
		Mode:            o.mode,
		Alpha:           o.alpha,
		Transport:       s.mem.Endpoint(s.proto, ai),
		Store:           store,
		Values:          newValueStore(t),
		QueryTimeout:    o.queryTimeout,
		RefreshInterval: cmp.Or(o.refresh, -1),
		OnLookup: func(ls dht.LookupStats) {
			s.mu.Lock()
			s.stats = append(s.stats, ls)
			s.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	node := &simNode{ai: ai, d: d, store: st, values: d.Values()}
	s.nodes = append(s.nodes, node)
	return node
}

// newSim builds n server nodes: each joins by bootstrapping from a random
// earlier one, then all look themselves up once more so that the early
// nodes learn of the late ones.
func newSim(t testing.TB, mem *dhttest.Network, proto string, n int, o simOptions) *sim {
	t.Helper()
	s := &sim{mem: mem, proto: proto}
	ctx := context.Background()
	for i := range n {
		node := s.addNode(t, o)
		if i == 0 {
			continue
		}
		seed := s.nodes[mrand.IntN(i)].ai
		if err := node.d.Bootstrap(ctx, []peer.AddrInfo{seed}); err != nil {
			t.Fatalf("node %d bootstrap: %v", i, err)
		}
	}
	s.parallel(len(s.nodes), func(i int) {
		s.nodes[i].d.Bootstrap(ctx, nil)
	})
	s.takeStats()
	return s
}

// parallel runs f(0..n-1) on a few goroutines.
func (s *sim) parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (s *sim) takeStats() []dht.LookupStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	s.stats = nil
	return out
}

// find reports whether from finds want among the providers of key.
func find(ctx context.Context, from *simNode, key []byte, want peer.ID) bool {
	found := false
	for ai := range from.d.FindProviders(ctx, key, 0) {
		if ai.ID == want {
			found = true
		}
	}
	return found
}

type dist struct{ median, p90, max int }

func distOf(xs []int) dist {
	if len(xs) == 0 {
		return dist{}
	}
	slices.Sort(xs)
	return dist{xs[len(xs)/2], xs[len(xs)*9/10], xs[len(xs)-1]}
}

func (d dist) String() string {
	return fmt.Sprintf("median %d, p90 %d, max %d", d.median, d.p90, d.max)
}

func histogram(xs []int) string {
	h := map[int]int{}
	for _, x := range xs {
		h[x]++
	}
	keys := make([]int, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := ""
	for _, k := range keys {
		out += fmt.Sprintf(" %d:%d", k, h[k])
	}
	return out
}

// summarize reports the figures of the GET_PROVIDERS lookups in stats.
func summarize(t testing.TB, what string, stats []dht.LookupStats) dist {
	t.Helper()
	var rounds, hops, queries, fails []int
	for _, s := range stats {
		if s.Type != dht.GetProviders {
			continue
		}
		rounds = append(rounds, s.Rounds)
		hops = append(hops, s.Hops)
		queries = append(queries, s.Queries)
		fails = append(fails, s.Failures)
	}
	r := distOf(slices.Clone(rounds))
	t.Logf("%s: %d lookups; rounds %v (histogram%s); hops %v; messages %v; failed requests %v",
		what, len(rounds), r, histogram(rounds), distOf(hops), distOf(queries), distOf(fails))
	return r
}

func simSize(t *testing.T) int {
	if testing.Short() {
		return 300
	}
	return 1000
}

// TestSimulation provides random keys from random nodes of a 1000-node
// network, finds them from other random nodes, then kills 20% of the
// nodes (neither providers nor searchers: the test measures whether the
// records survive, not whether a dead provider can serve) and finds them
// again.
func TestSimulation(t *testing.T) {
	for _, alpha := range []int{3, 10} {
		t.Run(fmt.Sprintf("alpha=%d", alpha), func(t *testing.T) {
			n := simSize(t)
			start := time.Now()
			s := newSim(t, dhttest.NewNetwork(), dht.Protocol("share"), n, simOptions{alpha: alpha, queryTimeout: time.Second})
			sizes := make([]int, n)
			for i, node := range s.nodes {
				sizes[i] = node.d.RoutingTableSize()
			}
			t.Logf("%d nodes built in %v, %d messages; routing table sizes %v", n, time.Since(start).Round(time.Millisecond), s.mem.Messages(), distOf(sizes))

			ctx := context.Background()
			const nKeys = 200
			keys := make([][]byte, nKeys)
			provs := make([]*simNode, nKeys)
			busy := map[int]bool{}
			for i := range keys {
				keys[i] = randomKey()
				p := mrand.IntN(n)
				provs[i], busy[p] = s.nodes[p], true
			}
			s.parallel(nKeys, func(i int) {
				if err := provs[i].d.Provide(ctx, keys[i:i+1]); err != nil {
					t.Errorf("provide: %v", err)
				}
			})
			s.takeStats()

			searchers := make([]*simNode, nKeys)
			for i := range searchers {
				j := mrand.IntN(n)
				searchers[i], busy[j] = s.nodes[j], true
			}
			// With a latency, answers arrive in the order of a real
			// network's and Rounds counts round trips.
			s.mem.Latency = 5 * time.Millisecond
			measure := func(what string) (float64, dist) {
				var ok sync.Map
				before := s.mem.Messages()
				s.parallel(nKeys, func(i int) {
					if find(ctx, searchers[i], keys[i], provs[i].ai.ID) {
						ok.Store(i, true)
					}
				})
				found := 0
				ok.Range(func(any, any) bool { found++; return true })
				rate := float64(found) / nKeys
				t.Logf("%s: found %d/%d (%.1f%%), %d messages", what, found, nKeys, 100*rate, s.mem.Messages()-before)
				return rate, summarize(t, what, s.takeStats())
			}
			rate, rounds := measure("all alive")
			if rate < 1 {
				t.Errorf("success %.3f with all nodes alive, want 1", rate)
			}
			if alpha == 10 && rounds.median > 4 {
				t.Errorf("median rounds %d, want <= 4", rounds.median)
			}

			killed := 0
			for i, node := range s.nodes {
				if !busy[i] && killed < n/5 {
					s.mem.SetFault(node.ai.ID, dhttest.Dead)
					killed++
				}
			}
			if killed < n/5 {
				t.Fatalf("killed only %d nodes", killed)
			}
			rate, _ = measure(fmt.Sprintf("%d of %d dead", killed, n))
			if rate < 0.99 {
				t.Errorf("success %.3f with 20%% dead, want >= 0.99", rate)
			}
		})
	}
}
