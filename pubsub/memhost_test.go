package pubsub

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
)

// memNet is an in-memory network of pubsub hosts: streams are net.Pipes
// (which work inside testing/synctest bubbles, so heartbeats run on the
// fake clock), "connecting" two hosts tells each of the other as identify
// would, and killing a host resets all its streams.
type memNet struct {
	mu    sync.Mutex
	hosts map[peer.ID]*memHost
}

func newMemNet() *memNet { return &memNet{hosts: map[peer.ID]*memHost{}} }

type memHost struct {
	net      *memNet
	id       peer.ID
	mu       sync.Mutex
	dead     bool
	handlers map[string]func(share.Stream)
	watchers map[int]watcher
	nextW    int
	links    map[peer.ID]bool // connected peers; true if this host dialled
	streams  map[*memStream]struct{}
}

type watcher struct {
	proto string
	fn    func(peer.AddrInfo)
}

func (n *memNet) add(id peer.ID) *memHost {
	h := &memHost{net: n, id: id, handlers: map[string]func(share.Stream){}, watchers: map[int]watcher{},
		links: map[peer.ID]bool{}, streams: map[*memStream]struct{}{}}
	n.mu.Lock()
	n.hosts[id] = h
	n.mu.Unlock()
	return h
}

func (n *memNet) host(id peer.ID) *memHost {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hosts[id]
}

// connect links a (the dialler) and b and tells each host's watchers of
// the other's protocols.
func (n *memNet) connect(a, b *memHost) {
	a.mu.Lock()
	a.links[b.id] = true
	a.mu.Unlock()
	b.mu.Lock()
	b.links[a.id] = false
	b.mu.Unlock()
	a.notify(b)
	b.notify(a)
}

// notify calls h's watchers of the protocols other serves.
func (h *memHost) notify(other *memHost) {
	other.mu.Lock()
	protos := map[string]bool{}
	for p := range other.handlers {
		protos[p] = true
	}
	other.mu.Unlock()
	h.mu.Lock()
	var fns []func(peer.AddrInfo)
	for _, w := range h.watchers {
		if protos[w.proto] {
			fns = append(fns, w.fn)
		}
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn(peer.AddrInfo{ID: other.id})
	}
}

func (h *memHost) outbound(p peer.ID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.links[p]
}

// Peers returns the hosts h is linked to (as p2p.Streams does), so that
// a PubSub started on a linked host meets them.
func (h *memHost) Peers() []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]peer.ID, 0, len(h.links))
	for p := range h.links {
		ids = append(ids, p)
	}
	return ids
}

func (h *memHost) SetHandler(proto string, f func(share.Stream)) {
	h.mu.Lock()
	h.handlers[proto] = f
	h.mu.Unlock()
}

func (h *memHost) RemoveHandler(proto string) {
	h.mu.Lock()
	delete(h.handlers, proto)
	h.mu.Unlock()
}

func (h *memHost) WatchProtocol(proto string, fn func(peer.AddrInfo)) func() {
	h.mu.Lock()
	id := h.nextW
	h.nextW++
	h.watchers[id] = watcher{proto, fn}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.watchers, id)
		h.mu.Unlock()
	}
}

var errRefused = errors.New("memnet: refused")

func (h *memHost) NewStream(ctx context.Context, p peer.ID, proto string) (share.Stream, error) {
	h.mu.Lock()
	_, linked := h.links[p]
	dead := h.dead
	h.mu.Unlock()
	to := h.net.host(p)
	if dead || !linked || to == nil {
		return nil, errRefused
	}
	to.mu.Lock()
	f := to.handlers[proto]
	if to.dead || f == nil {
		to.mu.Unlock()
		return nil, errRefused
	}
	a, b := net.Pipe()
	sa := &memStream{Conn: a, host: h, remote: p}
	sb := &memStream{Conn: b, host: to, remote: h.id}
	to.streams[sb] = struct{}{}
	to.mu.Unlock()
	h.mu.Lock()
	h.streams[sa] = struct{}{}
	h.mu.Unlock()
	go f(sb)
	return sa, nil
}

// kill makes h vanish: its streams reset, its peers' dials fail.
func (h *memHost) kill() {
	h.mu.Lock()
	h.dead = true
	streams := h.streams
	h.streams = map[*memStream]struct{}{}
	h.mu.Unlock()
	for s := range streams {
		s.Conn.Close()
	}
}

type memStream struct {
	net.Conn
	host   *memHost
	remote peer.ID
}

func (s *memStream) RemotePeer() peer.ID { return s.remote }
func (s *memStream) CloseWrite() error   { return s.Conn.Close() }
func (s *memStream) Reset() error        { return s.Close() }
func (s *memStream) Close() error {
	s.host.mu.Lock()
	delete(s.host.streams, s)
	s.host.mu.Unlock()
	return s.Conn.Close()
}

// testNode is a PubSub on a memHost.
type testNode struct {
	h  *memHost
	ps *PubSub
	id peer.ID
}

const testProto = "/test/meshsub/1.1.0"

func newTestNode(t testing.TB, n *memNet, seed int, tweak func(*Config)) *testNode {
	t.Helper()
	_, id := testKeyN(t, seed)
	return startTestNode(t, n.add(id), seed, tweak)
}

// startTestNode starts a PubSub on h, a host of key seed.
func startTestNode(t testing.TB, h *memHost, seed int, tweak func(*Config)) *testNode {
	t.Helper()
	priv, id := testKeyN(t, seed)
	cfg := Config{Key: priv, Protocols: []string{testProto}, Outbound: h.outbound}
	if tweak != nil {
		tweak(&cfg)
	}
	ps, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	return &testNode{h: h, ps: ps, id: id}
}

// waitFor polls cond on the fake clock until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
