package dht_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/dht/dhttest"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/p2p/peer"
)

func newValueStore(t testing.TB) *dht.ValueStore {
	t.Helper()
	vs, err := dht.NewValueStore(dht.ValueStoreConfig{KV: &dhttest.MemKV{}, Validators: map[string]dht.Validator{"ipns": ipns.Validator{}}})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// name is an IPNS key of a test.
type name struct {
	id   peer.ID
	priv ed25519.PrivateKey
	key  []byte // the routing key
}

func newName(t testing.TB) name {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return name{id, priv, ipns.RoutingKey(id)}
}

// record returns an encoded record of n with sequence seq, valid for
// life (negative: expired).
func (n name) record(t testing.TB, seq uint64, life time.Duration) []byte {
	t.Helper()
	r, err := ipns.New(n.priv, fmt.Appendf(nil, "/ipfs/bafkqaaa/v%d", seq), seq, time.Now().Add(life), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return r.Marshal()
}

func seqOf(t testing.TB, b []byte) uint64 {
	t.Helper()
	r, err := ipns.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return r.Sequence
}

// TestPutGetValue: a record put by one node is found by others, and a
// newer one replaces it.
func TestPutGetValue(t *testing.T) {
	s := newSim(t, dhttest.NewNetwork(), dht.Protocol("share"), 100, simOptions{alpha: 10, queryTimeout: time.Second})
	ctx := context.Background()
	n := newName(t)
	for seq := uint64(1); seq <= 2; seq++ {
		took, err := s.nodes[0].d.PutValue(ctx, n.key, n.record(t, seq, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if took < 15 {
			t.Errorf("put reached %d peers, want about 20", took)
		}
		v, err := s.nodes[70].d.GetValue(ctx, n.key)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqOf(t, v); got != seq {
			t.Errorf("got sequence %d, want %d", got, seq)
		}
	}
	if _, err := s.nodes[70].d.GetValue(ctx, newName(t).key); !errors.Is(err, dht.ErrNotFound) {
		t.Errorf("GetValue of an unpublished name: %v, want ErrNotFound", err)
	}
}

// TestPutValueRefused: every server refuses forged, replayed, expired,
// oversized and foreign records, and keeps what it had.
func TestPutValueRefused(t *testing.T) {
	mem := dhttest.NewNetwork()
	s := newSim(t, mem, dht.Protocol("share"), 2, simOptions{alpha: 10, queryTimeout: time.Second})
	srv, ctx := s.nodes[1], context.Background()
	n, other := newName(t), newName(t)
	good := n.record(t, 5, time.Hour)
	if _, err := s.nodes[0].d.PutValue(ctx, n.key, good); err != nil {
		t.Fatal(err)
	}
	forged := slices.Clone(good)
	forged[len(forged)-1] ^= 1 // in the signed data
	client := mem.Endpoint(dht.Protocol("share"), peer.AddrInfo{ID: randomID(t)})
	tests := []struct {
		name  string
		key   []byte
		value []byte
	}{
		{"forged", n.key, forged},
		{"older sequence", n.key, n.record(t, 4, 48*time.Hour)},
		{"expired", n.key, n.record(t, 6, -time.Second)},
		{"oversize", n.key, append(slices.Clone(good), make([]byte, ipns.MaxRecordSize)...)},
		{"another name's record", n.key, other.record(t, 9, time.Hour)},
		{"no validator", []byte("/pk/" + string(n.id)), good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := &dht.Message{Type: dht.PutValue, Key: tt.key, Record: &dht.Record{Key: tt.key, Value: tt.value}}
			if _, err := client.Send(ctx, srv.ai, msg); err == nil {
				t.Error("the server took it")
			}
			v, err := srv.values.Get(n.key)
			if err != nil || !bytes.Equal(v, good) {
				t.Errorf("the server's record changed: %v", err)
			}
		})
	}
}

// lyingTransport serves a DHT's handler but replaces the record of every
// GET_VALUE answer with lie.
type lyingTransport struct {
	dht.Network
	lie []byte
}

func (l lyingTransport) Serve(h dht.Handler) {
	if h == nil {
		l.Network.Serve(nil)
		return
	}
	l.Network.Serve(func(ctx context.Context, req dht.Request) (*dht.Message, error) {
		resp, err := h(ctx, req)
		if err == nil && resp.Type == dht.GetValue {
			resp.Record = &dht.Record{Key: resp.Key, Value: l.lie}
		}
		return resp, err
	})
}

// TestGetValueLiars: peers that answer a forged record, or replay an
// older one, do not win; honest peers that hold an older record are
// repaired.
func TestGetValueLiars(t *testing.T) {
	mem := dhttest.NewNetwork()
	proto := dht.Protocol("share")
	s := newSim(t, mem, proto, 80, simOptions{alpha: 10, queryTimeout: time.Second})
	ctx := context.Background()
	n, forger := newName(t), newName(t)
	older := n.record(t, 1, 48*time.Hour)
	// A forged record of a high sequence: another key's record, and
	// n's record with a bad signature.
	forgedSig := n.record(t, 99, time.Hour)
	forgedSig[len(forgedSig)-1] ^= 1
	lies := [][]byte{older, forger.record(t, 99, time.Hour), forgedSig, []byte("junk")}
	for i := range 40 {
		ai := peer.AddrInfo{ID: randomID(t), Addrs: []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/10.9.0.%d/tcp/4001", i))}}
		d, err := dht.New(dht.Config{
			Self: func() peer.AddrInfo { return ai }, Mode: dht.ModeServer,
			Transport: lyingTransport{mem.Endpoint(proto, ai), lies[i%len(lies)]},
			Store:     s.nodes[0].store, Values: newValueStore(t), RefreshInterval: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Bootstrap(ctx, []peer.AddrInfo{s.nodes[mrand.IntN(len(s.nodes))].ai}); err != nil {
			t.Fatal(err)
		}
	}
	s.parallel(len(s.nodes), func(i int) { s.nodes[i].d.Bootstrap(ctx, nil) })
	// Half the honest nodes hold the older record, then the publisher
	// puts the newer one to the closest.
	for _, node := range s.nodes[:40] {
		if err := node.values.Put(n.key, older); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.nodes[0].d.PutValue(ctx, n.key, n.record(t, 2, time.Hour)); err != nil {
		t.Fatal(err)
	}
	resolver := s.addNode(t, simOptions{alpha: 10, queryTimeout: time.Second})
	resolver.d.Bootstrap(ctx, []peer.AddrInfo{s.nodes[79].ai})
	v, st, err := resolver.d.GetValueStats(ctx, n.key)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqOf(t, v); got != 2 {
		t.Fatalf("resolved sequence %d, want 2 (stats %+v)", got, st)
	}
	if st.Invalid == 0 || st.Repaired == 0 {
		t.Errorf("stats %+v: want forged records refused and stale peers repaired", st)
	}
	t.Logf("resolution among 40 liars: %+v", st)
}

// TestRepair: after a GetValue, the closest peers that answered an older
// record hold the newest one.
func TestRepair(t *testing.T) {
	mem := dhttest.NewNetwork()
	s := newSim(t, mem, dht.Protocol("share"), 60, simOptions{alpha: 10, queryTimeout: time.Second})
	ctx := context.Background()
	n := newName(t)
	older, newer := n.record(t, 1, time.Hour), n.record(t, 2, time.Hour)
	for _, node := range s.nodes {
		node.values.Put(n.key, older)
	}
	// The newer record is at the peer closest to the key, which every
	// full lookup asks.
	target := dht.KeyOf(n.key)
	closest := slices.MinFunc(s.nodes[1:], func(a, b *simNode) int {
		return target.Xor(dht.KeyOf([]byte(a.ai.ID))).Cmp(target.Xor(dht.KeyOf([]byte(b.ai.ID))))
	})
	closest.values.Put(n.key, newer)
	var repairedTo atomic.Int32
	done := make(chan struct{})
	resolver := s.nodes[0]
	// The resolver's own DHT runs the repair: rebuild it with OnRepair.
	resolver.d.Close()
	d, err := dht.New(dht.Config{
		Self: func() peer.AddrInfo { return resolver.ai }, Transport: mem.Endpoint(dht.Protocol("share"), resolver.ai),
		Store: resolver.store, Values: resolver.values, RefreshInterval: -1,
		// No early stop at a quorum of older records: the lookup goes on
		// to the closest peers.
		ValueQuorum: 1000,
		OnRepair:    func(_ []byte, k int) { repairedTo.Store(int32(k)); close(done) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.Bootstrap(ctx, []peer.AddrInfo{s.nodes[1].ai})
	v, st, err := d.GetValueStats(ctx, n.key)
	if err != nil {
		t.Fatal(err)
	}
	if seqOf(t, v) != 2 {
		t.Fatalf("resolved sequence %d, want 2 (stats %+v)", seqOf(t, v), st)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no repair within 10 s")
	}
	if repairedTo.Load() == 0 {
		t.Fatal("no peer took the repair")
	}
	fresh := 0
	for _, node := range s.nodes[1:] {
		if v, err := node.values.Get(n.key); err == nil && seqOf(t, v) == 2 {
			fresh++
		}
	}
	t.Logf("repaired %d peers; %d nodes now hold sequence 2", repairedTo.Load(), fresh)
	if fresh < int(repairedTo.Load()) {
		t.Errorf("%d nodes hold the newer record, want >= %d", fresh, repairedTo.Load())
	}
}

// TestNameSimulation publishes IPNS records from random nodes of a
// 1000-node network, resolves them from other random nodes, then kills
// 20% of the nodes (neither publishers nor resolvers) and resolves them
// again: the figure of name resolution that the provider lookups of
// TestSimulation have.
func TestNameSimulation(t *testing.T) {
	n := simSize(t)
	s := newSim(t, dhttest.NewNetwork(), dht.Protocol("share"), n, simOptions{alpha: 10, queryTimeout: time.Second})
	ctx := context.Background()
	const nNames = 100
	names := make([]name, nNames)
	// The second resolvers, after the churn, are others: the first ones
	// keep a copy of what they resolved.
	pubs, resolvers, resolvers2 := make([]*simNode, nNames), make([]*simNode, nNames), make([]*simNode, nNames)
	busy := map[int]bool{}
	for i := range names {
		names[i] = newName(t)
		p, r, r2 := mrand.IntN(n), mrand.IntN(n), mrand.IntN(n)
		pubs[i], resolvers[i], resolvers2[i] = s.nodes[p], s.nodes[r], s.nodes[r2]
		busy[p], busy[r], busy[r2] = true, true, true
	}
	s.parallel(nNames, func(i int) {
		if _, err := pubs[i].d.PutValue(ctx, names[i].key, names[i].record(t, 1, time.Hour)); err != nil {
			t.Errorf("put: %v", err)
		}
	})
	s.takeStats()
	s.mem.Latency = 5 * time.Millisecond
	measure := func(what string, resolvers []*simNode) (float64, dist) {
		var ok atomic.Int32
		s.parallel(nNames, func(i int) {
			if v, err := resolvers[i].d.GetValue(ctx, names[i].key); err == nil && seqOf(t, v) == 1 {
				ok.Add(1)
			}
		})
		var rounds []int
		for _, st := range s.takeStats() {
			if st.Type == dht.GetValue {
				rounds = append(rounds, st.Rounds)
			}
		}
		rate := float64(ok.Load()) / nNames
		r := distOf(slices.Clone(rounds))
		t.Logf("%s: resolved %d/%d (%.1f%%); rounds %v (histogram%s)", what, ok.Load(), nNames, 100*rate, r, histogram(rounds))
		return rate, r
	}
	if rate, rounds := measure("all alive", resolvers); rate < 1 || rounds.median > 4 {
		t.Errorf("all alive: success %.2f, median rounds %d; want 1 and <= 4", rate, rounds.median)
	}
	killed := 0
	for i, node := range s.nodes {
		if !busy[i] && killed < n/5 {
			s.mem.SetFault(node.ai.ID, dhttest.Dead)
			killed++
		}
	}
	if rate, _ := measure(fmt.Sprintf("%d of %d dead", killed, n), resolvers2); rate < 0.99 {
		t.Errorf("success %.3f with 20%% dead, want >= 0.99", rate)
	}
}

// TestValueStoreBounds: the store refuses new keys beyond MaxValues,
// drops records past their validity or MaxAge, and so makes room.
func TestValueStoreBounds(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	vs, err := dht.NewValueStore(dht.ValueStoreConfig{
		KV: &dhttest.MemKV{}, MaxValues: 2, MaxAge: 36 * time.Hour, Now: clock,
		Validators: map[string]dht.Validator{"ipns": ipns.Validator{Now: clock}},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := newName(t), newName(t), newName(t)
	for _, n := range []name{a, b} {
		if err := vs.Put(n.key, n.record(t, 1, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := vs.Put(c.key, c.record(t, 1, 48*time.Hour)); !errors.Is(err, dht.ErrStoreFull) {
		t.Fatalf("a third key in a store of 2: %v, want ErrStoreFull", err)
	}
	if err := vs.Put(a.key, a.record(t, 2, 48*time.Hour)); err != nil {
		t.Fatalf("a newer record of a stored key in a full store: %v", err)
	}
	now = now.Add(2 * time.Hour) // b's record expired
	if _, err := vs.Get(b.key); err == nil {
		t.Error("an expired record is served")
	}
	if n, err := vs.Expire(); n != 1 || err != nil {
		t.Fatalf("Expire dropped %d, %v; want 1", n, err)
	}
	if err := vs.Put(c.key, c.record(t, 1, 48*time.Hour)); err != nil {
		t.Fatalf("after expiry there is room: %v", err)
	}
	now = now.Add(37 * time.Hour) // a's record outlived MaxAge, valid or not
	if _, err := vs.Get(a.key); err == nil {
		t.Error("a record older than MaxAge is served")
	}
}
