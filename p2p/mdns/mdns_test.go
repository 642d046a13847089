package mdns

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/peer"
)

func newID(t testing.TB) peer.ID {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// finds records the peers a Service reports.
type finds struct {
	mu     sync.Mutex
	peers  map[peer.ID][]ma.Multiaddr
	at     map[peer.ID]time.Time
	calls  int
	ch     chan peer.ID
	heard  map[peer.ID]int // answers handled, reported or not
	heard1 chan struct{}   // a token when heard changes
}

func newFinds() *finds {
	return &finds{
		peers:  map[peer.ID][]ma.Multiaddr{},
		at:     map[peer.ID]time.Time{},
		ch:     make(chan peer.ID, 100),
		heard:  map[peer.ID]int{},
		heard1: make(chan struct{}, 1),
	}
}

// onSeen is the Service's seen hook.
func (f *finds) onSeen(id peer.ID) {
	f.mu.Lock()
	f.heard[id]++
	f.mu.Unlock()
	select {
	case f.heard1 <- struct{}{}:
	default:
	}
}

// heardAll reports whether each of ids was heard at least n times.
func (f *finds) heardAll(n int, ids ...peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if f.heard[id] < n {
			return false
		}
	}
	return true
}

func (f *finds) onPeer(id peer.ID, addrs []ma.Multiaddr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if _, ok := f.peers[id]; !ok {
		f.at[id] = time.Now()
	}
	f.peers[id] = addrs
	f.ch <- id
}

func (f *finds) has(id peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.peers[id]
	return ok
}

func (f *finds) ids() []peer.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []peer.ID
	for id := range f.peers {
		ids = append(ids, id)
	}
	return ids
}

type node struct {
	id    peer.ID
	port  int
	svc   *Service
	finds *finds
}

var nextPort = 4100

// startNode starts a Service on the namespace's loopback.
func startNode(t *testing.T, ns *netns, network string) *node {
	t.Helper()
	nextPort++
	n := &node{id: newID(t), port: nextPort, finds: newFinds()}
	addrs := []ma.Multiaddr{
		ma.StringCast(fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", n.port)),
		ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", n.port)),
	}
	var err error
	ns.do(func() {
		lo, ierr := net.InterfaceByName("lo")
		if ierr != nil {
			err = ierr
			return
		}
		n.svc, err = New(Config{
			Network:         network,
			ID:              n.id,
			Addrs:           func() []ma.Multiaddr { return addrs },
			Interfaces:      []net.Interface{*lo},
			IncludeLoopback: true,
			OnPeer:          n.finds.onPeer,
			Logger:          testLogger(),
		})
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	n.svc.seen = n.finds.onSeen
	if err := n.svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return n
}

func testLogger() *slog.Logger {
	if os.Getenv("MDNS_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// waitFind waits until n has found all of want.
func waitFind(t *testing.T, n *node, d time.Duration, want ...*node) {
	t.Helper()
	deadline := time.After(d)
	for {
		missing := 0
		for _, w := range want {
			if !n.finds.has(w.id) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-n.finds.ch:
		case <-deadline:
			t.Fatalf("%s found %d of %d peers within %v", n.id, len(want)-missing, len(want), d)
		}
	}
}

// waitHeard waits until n has handled answers of each of want at least
// times times.
func waitHeard(t *testing.T, n *node, d time.Duration, times int, want ...*node) {
	t.Helper()
	var ids []peer.ID
	for _, w := range want {
		ids = append(ids, w.id)
	}
	deadline := time.After(d)
	for !n.finds.heardAll(times, ids...) {
		select {
		case <-n.finds.heard1:
		case <-deadline:
			t.Fatalf("%s did not hear each of %d peers %d times within %v", n.id, len(want), times, d)
		}
	}
}

func TestTwoFindEachOther(t *testing.T) {
	ns := newNetns(t)
	// a answers from the moment startNode returns (pion's NewServer joins
	// the groups and starts its readers before it returns): b, started
	// now, joins a LAN with an existing node. Whether a's own first query
	// goes out before or after b starts changes nothing asserted here.
	a := startNode(t, ns, "share")
	start := time.Now()
	b := startNode(t, ns, "share")
	waitFind(t, b, 2*time.Second, a)
	latency := b.finds.at[a.id].Sub(start)
	t.Logf("new node found the existing one in %v", latency)
	if latency > 150*time.Millisecond {
		t.Errorf("discovery took %v, want <= 150ms", latency)
	}
	waitFind(t, a, 5*time.Second, b)

	want := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", a.port))
	b.finds.mu.Lock()
	got := b.finds.peers[a.id]
	b.finds.mu.Unlock()
	if len(got) != 1 || !got[0].Equal(want) {
		t.Errorf("addrs of a = %v, want [%s]", got, want)
	}
	for _, n := range []*node{a, b} {
		if n.finds.has(n.id) {
			t.Errorf("%s found itself", n.id)
		}
	}
}

func TestThreeFindEachOther(t *testing.T) {
	ns := newNetns(t)
	nodes := []*node{startNode(t, ns, "share"), startNode(t, ns, "share"), startNode(t, ns, "share")}
	others := func(i int) []*node {
		return slices.Concat(nodes[:i], nodes[i+1:])
	}
	for i, n := range nodes {
		waitFind(t, n, 5*time.Second, others(i)...)
	}
	// Repeated queries must not report the same peer again: wait until
	// each node has handled a repeated answer of each other one (a new
	// query every 1, 2, 4 s gets one), rather than for a guessed time.
	for i, n := range nodes {
		waitHeard(t, n, 10*time.Second, 2, others(i)...)
	}
	for _, n := range nodes {
		n.finds.mu.Lock()
		calls := n.finds.calls
		n.finds.mu.Unlock()
		if calls != 2 {
			t.Errorf("OnPeer called %d times, want 2", calls)
		}
	}
}

func TestNetworksIgnoreEachOther(t *testing.T) {
	ns := newNetns(t)
	a := startNode(t, ns, "alpha")
	b := startNode(t, ns, "beta")
	a2 := startNode(t, ns, "alpha")
	b2 := startNode(t, ns, "beta")
	waitFind(t, a2, 3*time.Second, a)
	waitFind(t, b2, 3*time.Second, b)
	waitFind(t, a, 3*time.Second, a2)
	waitFind(t, b, 3*time.Second, b2)
	for _, n := range []*node{a, a2, b, b2} {
		if ids := n.finds.ids(); len(ids) != 1 {
			t.Errorf("%s found %d peers, want 1 of its own network", n.id, len(ids))
		}
	}
}

func TestStartAfterClose(t *testing.T) {
	ns := newNetns(t)
	n := startNode(t, ns, "share")
	if err := n.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.svc.Start(context.Background()); err != ErrClosed {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
}

func TestConfigValidation(t *testing.T) {
	id := newID(t)
	ok := Config{Network: "share", ID: id, Addrs: func() []ma.Multiaddr { return nil }, OnPeer: func(peer.ID, []ma.Multiaddr) {}}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"empty network", func(c *Config) { c.Network = "" }},
		{"bad network", func(c *Config) { c.Network = "a b" }},
		{"long network", func(c *Config) { c.Network = string(make([]byte, 65)) }},
		{"no id", func(c *Config) { c.ID = "" }},
		{"no addrs", func(c *Config) { c.Addrs = nil }},
		{"no onpeer", func(c *Config) { c.OnPeer = nil }},
		{"negative interval", func(c *Config) { c.QueryInterval = -1 }},
	}
	for _, tt := range tests {
		c := ok
		tt.edit(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: validate() = nil", tt.name)
		}
	}
	if err := ok.validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if _, err := New(Config{Network: "share", ID: id, Addrs: ok.Addrs, OnPeer: ok.OnPeer, Interfaces: []net.Interface{}}); err != ErrNoInterfaces {
		t.Errorf("New with no interfaces = %v, want ErrNoInterfaces", err)
	}
}
