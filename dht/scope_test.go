package dht_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/dht/dhttest"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/provide"
)

// TestScopeTables is kubo's dual DHT address rules, address by address:
// what each scope keeps, and whether a peer with only that address may
// enter the table.
func TestScopeTables(t *testing.T) {
	for _, tc := range []struct {
		addr                string
		wanKeeps, lanAdmits bool
	}{
		{"/ip4/8.8.8.8/tcp/4001", true, false},
		{"/ip4/10.77.0.1/tcp/4001", false, true},
		{"/ip4/172.16.3.4/tcp/4001", false, true},
		{"/ip4/192.168.1.1/tcp/4001", false, true},
		{"/ip4/100.64.0.1/tcp/4001", false, true}, // CGNAT
		{"/ip4/169.254.1.1/tcp/4001", false, true},
		{"/ip4/127.0.0.1/tcp/4001", false, true},  // loopback is private to kad-dht
		{"/ip4/192.0.2.1/tcp/4001", false, false}, // documentation: unroutable
		{"/ip4/198.18.0.1/tcp/4001", false, false},
		{"/ip6/2606:4700::1/tcp/4001", true, false},
		{"/ip6/2001:db8::1/tcp/4001", true, false}, // 2000::/3, as kad-dht says
		{"/ip6/fd00::1/tcp/4001", false, true},
		{"/ip6/::1/tcp/4001", false, true},
		{"/ip4/0.0.0.0/tcp/4001", false, false}, // never sane
		{"/ip4/8.8.8.8/udp/4001/quic-v1", false, false},
	} {
		in := []ma.Multiaddr{ma.StringCast(tc.addr)}
		wan := dht.ScopeWAN.Filter(in)
		if got := len(wan) == 1; got != tc.wanKeeps {
			t.Errorf("WAN keeps %s: %v, want %v", tc.addr, got, tc.wanKeeps)
		}
		if got := dht.ScopeWAN.Admits(wan); got != tc.wanKeeps {
			t.Errorf("WAN admits %s: %v, want %v", tc.addr, got, tc.wanKeeps)
		}
		lan := dht.ScopeLAN.Filter(in)
		if got := dht.ScopeLAN.Admits(lan); got != tc.lanAdmits {
			t.Errorf("LAN admits %s: %v, want %v", tc.addr, got, tc.lanAdmits)
		}
		if sane := len(dht.SaneAddrs(in)) == 1; len(lan) == 1 != sane || dht.ScopeAll.Admits(dht.ScopeAll.Filter(in)) != sane {
			t.Errorf("LAN or all filter %s differently from SaneAddrs", tc.addr)
		}
	}
	mixed := []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/1"), ma.StringCast("/ip4/8.8.8.8/tcp/1")}
	if got := dht.ScopeWAN.Filter(mixed); len(got) != 1 || !got[0].Equal(mixed[1]) {
		t.Errorf("WAN filter of %v = %v", mixed, got)
	}
	if !dht.ScopeLAN.Admits(mixed) {
		t.Error("LAN refuses a peer with a private address among public ones")
	}
}

// dualNode is a node of a simulated network ipfs: a WAN and a LAN DHT over
// one provider store, as the node wires them.
type dualNode struct {
	ai   peer.AddrInfo
	dual *dht.Dual
}

func newDualNode(t *testing.T, net *dhttest.Network, addr string) *dualNode {
	t.Helper()
	n := &dualNode{ai: peer.AddrInfo{ID: randomID(t), Addrs: []ma.Multiaddr{ma.StringCast(addr)}}}
	self := func() peer.AddrInfo { return n.ai }
	st, _ := provide.NewStore(provide.StoreConfig{})
	mk := func(proto string, scope dht.Scope) *dht.DHT {
		d, err := dht.New(dht.Config{Self: self, Mode: dht.ModeAuto, Scope: scope, Store: st,
			Transport: net.Endpoint(proto, n.ai), RefreshInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	n.dual = &dht.Dual{WAN: mk(dht.Protocol("ipfs"), dht.ScopeWAN), LAN: mk(dht.LANProtocol("ipfs"), dht.ScopeLAN)}
	return n
}

// TestDualOnALAN: nodes with private addresses only fill their LAN
// tables (the WAN ones stay empty and in client mode, as kubo's), provide
// and find providers through the LAN DHT; FindProviders merges both, each
// provider once, and stops at max.
func TestDualOnALAN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	net := dhttest.NewNetwork()
	var lan []*dualNode
	for i := range 5 {
		lan = append(lan, newDualNode(t, net, fmt.Sprintf("/ip4/10.77.0.%d/tcp/4001", i+1)))
	}
	for _, n := range lan[1:] {
		if err := n.dual.Bootstrap(ctx, []peer.AddrInfo{lan[0].ai}); err != nil {
			t.Fatalf("bootstrap: %v", err)
		}
	}
	for _, n := range lan {
		if n.dual.WAN.Mode() != dht.ModeClient || n.dual.LAN.Mode() != dht.ModeServer {
			t.Fatalf("modes WAN %v LAN %v, want client and server", n.dual.WAN.Mode(), n.dual.LAN.Mode())
		}
		if n.dual.WAN.RoutingTableSize() != 0 || n.dual.LAN.RoutingTableSize() == 0 {
			t.Fatalf("tables WAN %d LAN %d", n.dual.WAN.RoutingTableSize(), n.dual.LAN.RoutingTableSize())
		}
	}
	key := randomKey()
	if err := lan[4].dual.Provide(ctx, [][]byte{key}); err != nil {
		t.Fatalf("provide on the LAN: %v", err)
	}
	got := drain(lan[1].dual.FindProviders(ctx, key, 0))
	if !slices.Contains(got, lan[4].ai.ID) {
		t.Fatalf("providers %v, want %s", got, lan[4].ai.ID)
	}
	// A second record of the same provider in the shared store, and one
	// of another: each peer comes once.
	lan[2].dual.Provide(ctx, [][]byte{key})
	lan[4].dual.Provide(ctx, [][]byte{key})
	got = drain(lan[1].dual.FindProviders(ctx, key, 0))
	if len(got) != 2 || !slices.Contains(got, lan[2].ai.ID) || !slices.Contains(got, lan[4].ai.ID) {
		t.Fatalf("providers %v", got)
	}
	if got := drain(lan[1].dual.FindProviders(ctx, key, 1)); len(got) != 1 {
		t.Fatalf("max 1: %v", got)
	}
}

func drain(ch <-chan peer.AddrInfo) []peer.ID {
	var ids []peer.ID
	for ai := range ch {
		ids = append(ids, ai.ID)
	}
	return ids
}
