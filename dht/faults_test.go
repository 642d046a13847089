package dht_test

import (
	"context"
	"errors"
	"fmt"
	ma "github.com/multiformats/go-multiaddr"
	"sync/atomic"
	"testing"
	"time"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/dht/dhttest"
	"github.com/share-p2p/share/p2p/peer"
)

// TestFaultyPeers: peers that answer garbage, lie, or never answer cost
// lookups time but not results, and leave the routing tables of those
// who asked them twice.
func TestFaultyPeers(t *testing.T) {
	const n = 200
	mem := dhttest.NewNetwork()
	s := newSim(t, mem, dht.Protocol("share"), n, simOptions{alpha: 10, queryTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	keys := make([][]byte, 40)
	for i := range keys {
		keys[i] = randomKey()
		if err := s.nodes[i].d.Provide(ctx, keys[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	faults := []dhttest.Fault{dhttest.Garbage, dhttest.Liar, dhttest.Blackhole}
	bad := map[peer.ID]bool{}
	for i := 80; i < 80+30; i++ {
		id := s.nodes[i].ai.ID
		mem.SetFault(id, faults[i%3])
		bad[id] = faults[i%3] != dhttest.Liar
	}
	s.takeStats()
	var found atomic.Int32
	s.parallel(len(keys), func(i int) {
		if find(ctx, s.nodes[n-1-i], keys[i], s.nodes[i].ai.ID) {
			found.Add(1)
		}
	})
	summarize(t, "15% faulty", s.takeStats())
	if int(found.Load()) != len(keys) {
		t.Errorf("found %d of %d with faulty peers", found.Load(), len(keys))
	}
	// A second pass: the peers that failed twice are gone from tables (the
	// liars answer well-formed messages, so they stay).
	s.parallel(len(keys), func(i int) { find(ctx, s.nodes[n-1-i], keys[i], "") })
	left := 0
	for i := n - len(keys); i < n; i++ {
		for id, failing := range bad {
			if !failing {
				continue
			}
			if _, err := s.nodes[i].d.FindPeerLocal(id); err == nil {
				left++
			}
		}
	}
	t.Logf("garbage and blackhole peers left in %d searchers' tables: %d entries", len(keys), left)

	// One garbage answer is enough to leave a table: ping each garbage
	// peer from a node that has it in its table.
	checked := 0
	for i := 80; i < 80+30; i++ {
		if faults[i%3] != dhttest.Garbage {
			continue
		}
		g := s.nodes[i].ai
		for _, nd := range s.nodes {
			if _, err := nd.d.FindPeerLocal(g.ID); err != nil {
				continue
			}
			if err := nd.d.Ping(ctx, g); err == nil {
				t.Fatalf("ping of a garbage peer succeeded")
			}
			if _, err := nd.d.FindPeerLocal(g.ID); err == nil {
				t.Fatalf("a peer that answered garbage is still in the table")
			}
			checked++
			break
		}
	}
	if checked == 0 {
		t.Fatal("no garbage peer in any table: nothing checked")
	}
}

// TestNetworksDoNotMix: two DHTs with different network names on one
// transport never exchange records, even when told each other's
// addresses.
func TestNetworksDoNotMix(t *testing.T) {
	mem := dhttest.NewNetwork()
	share := newSim(t, mem, dht.Protocol("share"), 30, simOptions{})
	lab := newSim(t, mem, dht.Protocol("lab"), 30, simOptions{})
	ctx := context.Background()

	key := randomKey()
	if err := lab.nodes[0].d.Provide(ctx, [][]byte{key}); err != nil {
		t.Fatal(err)
	}
	if !find(ctx, lab.nodes[29], key, lab.nodes[0].ai.ID) {
		t.Fatal("lab node does not find a lab provider")
	}
	// A share node bootstrapping from lab nodes finds no DHT there.
	stray := share.addNode(t, simOptions{})
	var labPeers []peer.AddrInfo
	for _, nd := range lab.nodes {
		labPeers = append(labPeers, nd.ai)
	}
	if err := stray.d.Bootstrap(ctx, labPeers); !errors.Is(err, dht.ErrNoPeers) {
		t.Errorf("bootstrap of a share node from lab peers: %v, want ErrNoPeers", err)
	}
	for i, nd := range share.nodes {
		if got := fmt.Sprint(collect(ctx, nd.d, key)); got != "[]" {
			t.Fatalf("share node %d found lab providers %s", i, got)
		}
	}
}

func collect(ctx context.Context, d *dht.DHT, key []byte) []peer.ID {
	var out []peer.ID
	for ai := range d.FindProviders(ctx, key, 0) {
		out = append(out, ai.ID)
	}
	return out
}

// TestClientsStayOutOfTables: client-mode nodes query servers but no
// server ever lists them.
func TestClientsStayOutOfTables(t *testing.T) {
	mem := dhttest.NewNetwork()
	s := newSim(t, mem, dht.Protocol("share"), 50, simOptions{})
	ctx := context.Background()
	var clients []*simNode
	for range 5 {
		c := s.addNode(t, simOptions{mode: dht.ModeClient})
		if c.d.Mode() != dht.ModeClient {
			t.Fatalf("a node without addresses runs in %v mode", c.d.Mode())
		}
		if err := c.d.Bootstrap(ctx, []peer.AddrInfo{s.nodes[0].ai}); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	key := randomKey()
	if err := s.nodes[1].d.Provide(ctx, [][]byte{key}); err != nil {
		t.Fatal(err)
	}
	if !find(ctx, clients[0], key, s.nodes[1].ai.ID) {
		t.Error("a client does not find a provider")
	}
	for _, nd := range s.nodes[:50] {
		for _, c := range clients {
			if _, err := nd.d.FindPeerLocal(c.ai.ID); err == nil {
				t.Fatalf("server %s has client %s in its table", nd.ai.ID, c.ai.ID)
			}
		}
	}
}

// TestProvideManyRoots provides 10 000 keys from one node and checks a
// sample: lookups are shared between keys close to each other.
func TestProvideManyRoots(t *testing.T) {
	n, nKeys := simSize(t), 10000
	if raceEnabled {
		nKeys = 2000
	}
	mem := dhttest.NewNetwork()
	s := newSim(t, mem, dht.Protocol("share"), n, simOptions{})
	keys := make([][]byte, nKeys)
	for i := range keys {
		keys[i] = randomKey()
	}
	ctx := context.Background()
	// Every request now costs a 10 ms round trip, as on a real network.
	mem.Latency = 5 * time.Millisecond
	start := time.Now()
	before := mem.Messages()
	st, err := s.nodes[0].d.ProvideStats(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("provided %d keys in %v: %d lookups (%.0f keys per lookup), %d ADD_PROVIDER (%d failed), %d messages in all",
		st.Keys, el.Round(time.Millisecond), st.Lookups, float64(st.Keys)/float64(st.Lookups), st.Requests, st.Failed, mem.Messages()-before)
	if el > time.Minute {
		t.Errorf("providing took %v, want <= 60 s", el)
	}
	// Keys close to each other share a lookup: one lookup per key would
	// be nKeys lookups.
	if st.Lookups > nKeys/20 {
		t.Errorf("%d lookups for %d keys: lookups are not shared", st.Lookups, nKeys)
	}
	var found atomic.Int32
	s.parallel(100, func(i int) {
		if find(ctx, s.nodes[1+i], keys[i*len(keys)/100], s.nodes[0].ai.ID) {
			found.Add(1)
		}
	})
	if found.Load() != 100 {
		t.Errorf("found %d of 100 sampled keys", found.Load())
	}
}

// TestForeignProviderRecords: an ADD_PROVIDER that names another peer than
// its sender is ignored; the sender's own record is kept.
func TestForeignProviderRecords(t *testing.T) {
	mem := dhttest.NewNetwork()
	s := newSim(t, mem, dht.Protocol("share"), 3, simOptions{})
	server := s.nodes[0]
	evil := peer.AddrInfo{ID: randomID(t), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.9.9.9/tcp/4001")}}
	victim := peer.AddrInfo{ID: randomID(t), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.9.9.8/tcp/4001")}}
	ep := mem.Endpoint(dht.Protocol("share"), evil)
	key := randomKey()
	req := &dht.Message{Type: dht.AddProvider, Key: key, ProviderPeers: []dht.Peer{
		{ID: victim.ID, Addrs: victim.Addrs}, // a record for someone else
		{ID: evil.ID, Addrs: evil.Addrs},     // and its own
	}}
	// Make the evil peer known first: it answers like a server.
	if _, err := ep.Send(context.Background(), server.ai, &dht.Message{Type: dht.Ping}); err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Send(context.Background(), server.ai, req); err == nil {
		t.Fatal("ADD_PROVIDER with a record for another peer was accepted")
	}
	if got := server.store.Providers(key, 0); len(got) != 0 {
		t.Fatalf("stored providers %v, want none: the message is refused whole", got)
	}
	if _, err := server.d.FindPeerLocal(evil.ID); err == nil {
		t.Fatal("the sender of a foreign record is still in the routing table")
	}
	// Its own record alone is accepted.
	req.ProviderPeers = req.ProviderPeers[1:]
	if _, err := ep.Send(context.Background(), server.ai, req); err != nil {
		t.Fatal(err)
	}
	if got := server.store.Providers(key, 0); len(got) != 1 || got[0].ID != evil.ID {
		t.Fatalf("stored providers %v, want only the sender %s", got, evil.ID)
	}
}

// TestLiarsLeaveTables: a peer whose answers name only made-up peers is
// dropped from the table of the node that followed them; an honest peer
// that names nobody stays.
func TestLiarsLeaveTables(t *testing.T) {
	for _, lie := range []bool{true, false} {
		mem := dhttest.NewNetwork()
		s := newSim(t, mem, dht.Protocol("share"), 2, simOptions{alpha: 10, queryTimeout: 200 * time.Millisecond})
		searcher, other := s.nodes[0], s.nodes[1]
		if _, err := searcher.d.FindPeerLocal(other.ai.ID); err != nil {
			t.Fatal("the sim did not put the other node in the searcher's table")
		}
		if lie {
			mem.SetFault(other.ai.ID, dhttest.Liar)
		}
		for range searcher.d.FindProviders(context.Background(), randomKey(), 0) {
		}
		_, err := searcher.d.FindPeerLocal(other.ai.ID)
		if lie && err == nil {
			t.Fatal("a liar is still in the table after its 20 made-up peers failed")
		}
		if !lie && err != nil {
			t.Fatal("an honest peer left the table")
		}
	}
}

// TestRefreshEvictsDeadPeers: the refresh loop pings peers not heard from
// for a refresh interval; one that stops answering leaves the table,
// while the live ones stay.
func TestRefreshEvictsDeadPeers(t *testing.T) {
	mem := dhttest.NewNetwork()
	s := newSim(t, mem, dht.Protocol("share"), 4, simOptions{queryTimeout: 100 * time.Millisecond})
	x := s.addNode(t, simOptions{queryTimeout: 100 * time.Millisecond, refresh: 50 * time.Millisecond})
	if err := x.d.Bootstrap(context.Background(), []peer.AddrInfo{s.nodes[0].ai}); err != nil {
		t.Fatal(err)
	}
	dead, live := s.nodes[1].ai.ID, s.nodes[2].ai.ID
	for _, id := range []peer.ID{dead, live} {
		if _, err := x.d.FindPeerLocal(id); err != nil {
			t.Fatalf("%s not in the table after bootstrap", id)
		}
	}
	mem.SetFault(dead, dhttest.Blackhole)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := x.d.FindPeerLocal(dead); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a peer that stopped answering is still in the table after 10 s of refreshes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := x.d.FindPeerLocal(live); err != nil {
		t.Fatal("a live peer left the table")
	}
}
