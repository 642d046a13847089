package provide

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/peer"
)

var errNotFound = errs.New(errs.NotFound, "not found")

// memKV is a KV in memory.
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKV) Get(key []byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[string(key)]
	if !ok {
		return nil, errNotFound
	}
	return bytes.Clone(v), nil
}

func (k *memKV) Set(key, val []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[string(key)] = bytes.Clone(val)
	return nil
}

func (k *memKV) Delete(key []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, string(key))
	return nil
}

func (k *memKV) Iterate(fn func(key, val []byte) error) error {
	k.mu.Lock()
	keys := make([]string, 0, len(k.m))
	for key := range k.m {
		keys = append(keys, key)
	}
	k.mu.Unlock()
	sort.Strings(keys)
	for _, key := range keys {
		v, _ := k.Get([]byte(key))
		if err := fn([]byte(key), v); err != nil {
			return err
		}
	}
	return nil
}

func testPeer(t testing.TB, i int) peer.AddrInfo {
	t.Helper()
	pub := make([]byte, 32)
	rand.Read(pub)
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/10.0.%d.%d/tcp/4001", i>>8&255, i&255))}}
}

func testKey() []byte {
	k := make([]byte, 34)
	k[0], k[1] = 0x12, 0x20
	rand.Read(k[2:])
	return k
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestStoreExpiryAndPersistence(t *testing.T) {
	kv := &memKV{m: map[string][]byte{}}
	clk := &clock{time.Unix(1_700_000_000, 0)}
	s, err := NewStore(StoreConfig{KV: kv, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := testKey(), testKey()
	p1, p2 := testPeer(t, 1), testPeer(t, 2)
	s.AddProvider(k1, p1)
	s.AddProvider(k1, p2)
	clk.t = clk.t.Add(24 * time.Hour)
	s.AddProvider(k2, p1)
	if got := s.Providers(k1, 0); len(got) != 2 || got[0].ID != p2.ID {
		t.Fatalf("providers of k1: %v", got)
	}
	// Reload: the records come back from the keyspace.
	s2, err := NewStore(StoreConfig{KV: kv, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Len() != 3 || !s2.Providers(k2, 1)[0].Addrs[0].Equal(p1.Addrs[0]) {
		t.Fatalf("reloaded %d records", s2.Len())
	}
	// 48 h after the first records, they are gone; k2's is renewed later.
	clk.t = clk.t.Add(24*time.Hour + time.Second)
	if got := s2.Providers(k1, 0); len(got) != 0 {
		t.Fatalf("expired records served: %v", got)
	}
	if n := s2.Expire(); n != 2 || s2.Len() != 1 {
		t.Fatalf("expired %d, %d left", n, s2.Len())
	}
	if len(kv.m) != 1 {
		t.Fatalf("keyspace holds %d records after expiry", len(kv.m))
	}
	s3, _ := NewStore(StoreConfig{KV: kv, Now: clk.now})
	if s3.Len() != 1 {
		t.Fatalf("reloaded %d records after expiry", s3.Len())
	}
}

func TestStoreLimits(t *testing.T) {
	s, _ := NewStore(StoreConfig{MaxPerPeer: 3, MaxPerKey: 2})
	p := testPeer(t, 1)
	for i := range 3 {
		if err := s.AddProvider(testKey(), p); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if err := s.AddProvider(testKey(), p); !errors.Is(err, ErrPeerLimit) {
		t.Fatalf("record over the per-peer limit: %v", err)
	}
	k := testKey()
	for i := range 3 {
		s.AddProvider(k, testPeer(t, i+2))
	}
	if got := s.Providers(k, 0); len(got) != 2 {
		t.Fatalf("%d providers kept, want 2", len(got))
	}
}

// TestMemoryPerRecord measures the heap of provider records, each of its
// own key and one decoded address.
func TestMemoryPerRecord(t *testing.T) {
	const n = 100000
	s, _ := NewStore(StoreConfig{})
	provs := make([]peer.AddrInfo, 100)
	for i := range provs {
		provs[i] = testPeer(t, i)
	}
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = testKey()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, k := range keys {
		p := provs[i%len(provs)]
		a, _ := ma.NewMultiaddrBytes(p.Addrs[0].Bytes())
		s.AddProvider(k, peer.AddrInfo{ID: p.ID, Addrs: []ma.Multiaddr{a}})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("provider store: %.0f bytes per record (34-byte key, one ip4/tcp address)", float64(after.HeapAlloc-before.HeapAlloc)/n)
	runtime.KeepAlive(s)
	runtime.KeepAlive(keys)
}

// fakeRouter records what is provided.
type fakeRouter struct {
	mu      sync.Mutex
	batches [][][]byte
}

func (r *fakeRouter) Provide(_ context.Context, keys [][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, keys)
	return nil
}

func (r *fakeRouter) FindProviders(context.Context, []byte, int) <-chan peer.AddrInfo {
	c := make(chan peer.AddrInfo)
	close(c)
	return c
}

func (r *fakeRouter) count() (batches, keys int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.batches {
		keys += len(b)
	}
	return len(r.batches), keys
}

func testCid(t *testing.T) cid.Cid {
	h, err := mh.Sum([]byte(t.Name()+fmt.Sprint(time.Now().UnixNano())), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func TestAnnounceStrategies(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		s    string
		want int
	}{{"roots", 1}, {"all", 3}, {"none", 0}} {
		st, err := ParseStrategy(tt.s)
		if err != nil {
			t.Fatal(err)
		}
		r := &fakeRouter{}
		p, _ := New(Config{Router: r, Strategy: st})
		if err := p.Announce(ctx, testCid(t), []cid.Cid{testCid(t), testCid(t)}); err != nil {
			t.Fatal(err)
		}
		if _, keys := r.count(); keys != tt.want {
			t.Errorf("%s: announced %d keys, want %d", tt.s, keys, tt.want)
		}
	}
	if _, err := ParseStrategy("some"); err == nil {
		t.Error("bad strategy accepted")
	}
}

func TestReprovideLoop(t *testing.T) {
	r := &fakeRouter{}
	keys := make([][]byte, 25)
	for i := range keys {
		keys[i] = testKey()
	}
	p, _ := New(Config{
		Router:       r,
		Keys:         eachOf(keys),
		Interval:     10 * time.Millisecond,
		InitialDelay: time.Millisecond,
		BatchSize:    10,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := r.count(); b >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no two reprovide rounds in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.batches[0]) != 10 || len(r.batches[2]) != 5 {
		t.Fatalf("batches of %d, %d, %d keys", len(r.batches[0]), len(r.batches[1]), len(r.batches[2]))
	}
}

// eachOf is a Config.Keys that lists keys.
func eachOf(keys [][]byte) func(context.Context, func([]byte) error) error {
	return func(_ context.Context, fn func([]byte) error) error {
		for _, k := range keys {
			if err := fn(k); err != nil {
				return err
			}
		}
		return nil
	}
}
