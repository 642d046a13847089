package dht

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/peer"
)

func randomInfo(t testing.TB, i int) peer.AddrInfo {
	t.Helper()
	pub := make([]byte, 32)
	rand.Read(pub)
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	a := ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", i>>16&255, i>>8&255, i&255))
	return peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{a}}
}

func TestTableBucketsAndReplacements(t *testing.T) {
	self := KeyOf([]byte("self"))
	tb := newTable(self, 4, 2, time.Now)
	var all []peer.AddrInfo
	for i := range 2000 {
		ai := randomInfo(t, i)
		all = append(all, ai)
		tb.seen(ai)
	}
	for i, b := range tb.buckets {
		if len(b.live) > 4 || len(b.repl) > 4 {
			t.Fatalf("bucket %d: %d live, %d replacements", i, len(b.live), len(b.repl))
		}
	}
	// Bucket 0 (half the keyspace) is full and has replacements.
	b0 := &tb.buckets[0]
	if len(b0.live) != 4 || len(b0.repl) != 4 {
		t.Fatalf("bucket 0: %d live, %d replacements", len(b0.live), len(b0.repl))
	}
	victim, heir := b0.live[0].ai.ID, b0.repl[3].ai.ID
	tb.failed(victim)
	if _, ok := tb.find(victim); !ok {
		t.Fatal("one failure removed the peer")
	}
	tb.failed(victim)
	if _, ok := tb.find(victim); ok {
		t.Fatal("two failures did not remove the peer")
	}
	if _, ok := tb.find(heir); !ok {
		t.Fatal("the latest replacement did not take the place")
	}

	// closest agrees with brute force over the live entries.
	target := KeyOf([]byte("target"))
	var live []peer.AddrInfo
	for _, ai := range all {
		if _, ok := tb.find(ai.ID); ok {
			live = append(live, ai)
		}
	}
	slices.SortFunc(live, func(a, b peer.AddrInfo) int {
		return KeyOf([]byte(a.ID)).Xor(target).Cmp(KeyOf([]byte(b.ID)).Xor(target))
	})
	got := tb.closest(target, 10)
	for i := range got {
		if got[i].ID != live[i].ID {
			t.Fatalf("closest[%d] = %s, want %s", i, got[i].ID, live[i].ID)
		}
	}
	// Peers without addresses and the owner never enter.
	if tb.seen(peer.AddrInfo{ID: all[0].ID}) && len(all[0].Addrs) == 0 {
		t.Fatal("peer without addresses entered")
	}
}

func TestKeyArithmetic(t *testing.T) {
	var a, b Key
	a[31], b[31] = 200, 100
	if s := a.add(b); s[31] != 44 || s[30] != 1 {
		t.Fatalf("add: %x", s)
	}
	for i := range a {
		a[i] = 0xff
	}
	if s := a.add(b); s != a {
		t.Fatal("add does not saturate")
	}
	k := KeyOf([]byte("x"))
	for cpl := range 10 {
		if got := KeyOf(randomKeyAt(k, cpl)).CommonPrefixLen(k); got != cpl {
			t.Fatalf("randomKeyAt(%d) has cpl %d", cpl, got)
		}
	}
}

// TestMemoryPerEntry measures the heap of routing-table entries: peer ID,
// one decoded ip4/tcp address, keyspace point, bookkeeping.
func TestMemoryPerEntry(t *testing.T) {
	const n = 20000
	ids, addrs := make([][]byte, n), make([][]byte, n)
	for i := range ids {
		ai := randomInfo(t, i)
		ids[i], addrs[i] = []byte(ai.ID), ai.Addrs[0].Bytes()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := newTable(KeyOf([]byte("self")), n, 2, time.Now)
	for i := range ids {
		// Decoded from a message, as in a lookup: the ID and address
		// are the entry's own.
		a, _ := ma.NewMultiaddrBytes(addrs[i])
		tb.seen(peer.AddrInfo{ID: peer.ID(ids[i]), Addrs: []ma.Multiaddr{a}})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if tb.size() != n {
		t.Fatalf("table has %d entries", tb.size())
	}
	t.Logf("routing table: %.0f bytes per entry (ID, one ip4/tcp address, bookkeeping)", float64(after.HeapAlloc-before.HeapAlloc)/n)
	runtime.KeepAlive(tb)
	runtime.KeepAlive(ids)
	runtime.KeepAlive(addrs)
}
