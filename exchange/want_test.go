package exchange

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/p2p/peer"
)

const fakeWireProto = "/fake/bitswap/1.2.0"

// fakeWire is a want wire to in-process providers that answer as a
// Bitswap server does: blocks for block wants, HAVE or DONT_HAVE for have
// wants, DONT_HAVE for blocks they lack, in order, one message at a time.
type fakeWire struct {
	e *Exchange // the client, to answer to

	mu           sync.Mutex
	peers        map[peer.ID]*fakeProvider
	cutOff       map[peer.ID]error
	unidentified map[peer.ID]bool
}

// fakeProvider is one provider behind a fakeWire.
type fakeProvider struct {
	id    peer.ID
	store *dag.MemStore
	// answer, if not nil, replaces the normal answer to a block want.
	answer func(w *fakeWire, c cid.Cid) bool
	// perBlock is how long each block takes to send.
	perBlock time.Duration
	// gate, if not nil, holds every answer until it is closed.
	gate chan struct{}
	// haveAsBlock answers a have want of a block of at most this many
	// bytes with the block, as boxo's server does (1024 bytes there).
	haveAsBlock int
	q           chan Wants
	sent        atomic.Int32 // messages sent to it
	served      atomic.Int32 // messages answered

	mu      sync.Mutex
	wanted  map[cid.Cid]int // block wants received per CID
	cancels int
	closed  bool
}

func newFakeWire() *fakeWire {
	return &fakeWire{peers: make(map[peer.ID]*fakeProvider), cutOff: make(map[peer.ID]error), unidentified: make(map[peer.ID]bool)}
}

func (w *fakeWire) add(t *testing.T, id peer.ID, st *dag.MemStore) *fakeProvider {
	fp := &fakeProvider{id: id, store: st, q: make(chan Wants, 1024), wanted: make(map[cid.Cid]int)}
	w.mu.Lock()
	w.peers[id] = fp
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); fp.serve(w) }()
	t.Cleanup(func() {
		fp.mu.Lock()
		fp.closed = true
		close(fp.q)
		fp.mu.Unlock()
		<-done
	})
	return fp
}

func (w *fakeWire) Protocol() string { return fakeWireProto }

func (w *fakeWire) Speaks(p peer.ID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peers[p] != nil && !w.unidentified[p]
}

// identify says whether identify has described p yet (Speaks is false
// until it has).
func (w *fakeWire) identify(p peer.ID, done bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unidentified[p] = !done
}

func (w *fakeWire) Send(ctx context.Context, p peer.ID, m Wants) error {
	w.mu.Lock()
	fp, cut := w.peers[p], w.cutOff[p] != nil
	w.mu.Unlock()
	if fp == nil || cut {
		return errors.New("no connection")
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.closed {
		return errors.New("connection closed")
	}
	for _, c := range m.Blocks {
		fp.wanted[c]++
	}
	fp.cancels += len(m.Cancels)
	fp.sent.Add(1)
	fp.q <- m
	return nil
}

func (w *fakeWire) CutOff(p peer.ID, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cutOff[p] = err
}

func (w *fakeWire) cutOffErr(p peer.ID) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cutOff[p]
}

// serve answers fp's wants in order until its queue closes.
func (fp *fakeProvider) serve(w *fakeWire) {
	for m := range fp.q {
		if fp.gate != nil {
			<-fp.gate
		}
		for _, c := range m.Haves {
			if b, err := fp.store.Get(context.Background(), c); err == nil && len(b.Data) <= fp.haveAsBlock {
				w.e.WireBlock(fp.id, c.Prefix(), slices.Clone(b.Data))
				continue
			}
			ok, _ := fp.store.Has(context.Background(), c)
			w.e.WirePresence(fp.id, c, ok)
		}
		for _, c := range m.Blocks {
			if w.cutOffErr(fp.id) != nil {
				break
			}
			if fp.answer != nil && fp.answer(w, c) {
				continue
			}
			b, err := fp.store.Get(context.Background(), c)
			if err != nil {
				w.e.WirePresence(fp.id, c, false)
				continue
			}
			time.Sleep(fp.perBlock) // the link's speed
			w.e.WireBlock(fp.id, c.Prefix(), slices.Clone(b.Data))
		}
		fp.served.Add(1)
	}
}

func (fp *fakeProvider) wants(c cid.Cid) int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.wanted[c]
}

// newWireClient returns a client whose exchange asks the providers of w
// over the want wire and the rest over the share protocol.
func newWireClient(t *testing.T, n *memNet, w *fakeWire, cfg Config) *testPeer {
	cfg.Wire = w
	cfg.Speaks = func(p peer.ID, proto string) bool { return !w.Speaks(p) && proto == testProto }
	client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, cfg)
	w.e = client.e
	return client
}

// TestWireSession: a session fetches a whole DAG from providers it asks
// over the want wire only, and says what each sent over which protocol.
func TestWireSession(t *testing.T) {
	root, src, data := makeDAG(t, 4<<20, 64<<10, 41)
	n := newMemNet()
	w := newFakeWire()
	w.add(t, "bs1", src)
	w.add(t, "bs2", src)
	client := newWireClient(t, n, w, Config{})
	out := dag.NewMemStore()
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Putter: out, Providers: []peer.ID{"bs1", "bs2"}})
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
	p := s.Progress()
	var sum int64
	for _, f := range p.From {
		if f.Protocol != fakeWireProto {
			t.Errorf("%s sent over %q", f.Peer, f.Protocol)
		}
		sum += f.Bytes
	}
	if sum != p.Bytes {
		t.Fatalf("peers sent %d bytes in all, session fetched %d: %+v", sum, p.Bytes, p.From)
	}
}

// TestMixedSwarm: in one session, share peers send over the share
// protocol and want-wire peers over the wire, at once, each its part.
func TestMixedSwarm(t *testing.T) {
	root, src, data := makeDAG(t, 16<<20, 256<<10, 42)
	n := newMemNet()
	sh1 := newTestPeer(t, n, "share1", src, linkOpts{rate: 50e6}, Config{})
	sh2 := newTestPeer(t, n, "share2", src, linkOpts{rate: 50e6}, Config{})
	w := newFakeWire()
	for _, id := range []peer.ID{"bs1", "bs2"} {
		w.add(t, id, src).perBlock = 5 * time.Millisecond // about 50 MB/s
	}
	client := newWireClient(t, n, w, Config{})
	s := client.e.NewSession(testContext(t, 30*time.Second), root, SessionOptions{Stream: true,
		Providers: append(providerIDs(sh1, sh2), "bs1", "bs2")})
	checkFile(t, s, root, data)
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	got := map[peer.ID]PeerStat{}
	for _, f := range s.Progress().From {
		got[f.Peer] = f
	}
	for id, proto := range map[peer.ID]string{"share1": testProto, "share2": testProto, "bs1": fakeWireProto, "bs2": fakeWireProto} {
		if f := got[id]; f.Protocol != proto || f.Bytes < 1<<20 {
			t.Errorf("%s sent %d bytes over %q, want at least 1 MiB over %q", id, f.Bytes, f.Protocol, proto)
		}
	}
}

// TestWireHaveAnsweredTwice: a provider that answers want-have of a
// small block with the block itself (boxo does for blocks up to 1 KiB)
// and is asked twice before it answers sends the block twice; the second
// copy is late, not a protocol violation, and the provider stays in use.
func TestWireHaveAnsweredTwice(t *testing.T) {
	root, src, data := makeDAG(t, 1<<20, 256<<10, 45)
	n := newMemNet()
	w := newFakeWire()
	fp := w.add(t, "kubo", src)
	fp.haveAsBlock = 1024
	gate := make(chan struct{})
	fp.gate = gate
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open) // before the provider's, which waits for it
	client := newWireClient(t, n, w, Config{})
	ctx := testContext(t, 20*time.Second)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			have, err := client.e.Has(ctx, "kubo", []cid.Cid{root})
			if err != nil || !have[0] {
				t.Errorf("Has = %v, %v; want true", have, err)
			}
		}()
	}
	waitUntil(t, "both asks sent", func() bool { return fp.sent.Load() == 2 })
	open()
	wg.Wait()
	waitUntil(t, "both asks answered", func() bool { return fp.served.Load() == 2 })
	out := dag.NewMemStore()
	s := client.e.NewSession(ctx, root, SessionOptions{Putter: out, Providers: []peer.ID{"kubo"}})
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
	if err := w.cutOffErr("kubo"); err != nil {
		t.Fatalf("the provider was cut off: %v", err)
	}
}

// waitUntil polls cond until it holds, failing t after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
	}
}

// TestWireBadPeers: a want-wire provider that sends a block nobody asked
// for, or a corrupt block (whose CID is then one nobody asked for), is
// cut off and reported; the fetch completes from an honest provider.
func TestWireBadPeers(t *testing.T) {
	root, src, data := makeDAG(t, 2<<20, 64<<10, 43)
	other, otherSrc, _ := makeDAG(t, 64<<10, 64<<10, 44)
	n := newMemNet()
	w := newFakeWire()
	w.add(t, "honest", src).perBlock = time.Millisecond
	w.add(t, "liar", src).answer = func(w *fakeWire, c cid.Cid) bool {
		b, _ := otherSrc.Get(context.Background(), other)
		w.e.WireBlock("liar", other.Prefix(), b.Data)
		return true
	}
	w.add(t, "corrupt", src).answer = func(w *fakeWire, c cid.Cid) bool {
		b, err := src.Get(context.Background(), c)
		if err != nil {
			return false
		}
		bad := slices.Clone(b.Data)
		bad[0] ^= 1
		w.e.WireBlock("corrupt", c.Prefix(), bad)
		return true
	}
	var reports badPeers
	client := newWireClient(t, n, w, Config{OnBadPeer: reports.report})
	out := dag.NewMemStore()
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Putter: out, Providers: []peer.ID{"liar", "corrupt", "honest"}})
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
	for _, id := range []peer.ID{"liar", "corrupt"} {
		if err := reports.get(id); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s reported with %v, want an unrequested block", id, err)
		}
		if w.cutOffErr(id) == nil {
			t.Errorf("%s was not cut off", id)
		}
	}
	if err := reports.get("honest"); err != nil {
		t.Errorf("honest provider reported: %v", err)
	}
}

// TestWireSilentPeer: a want-wire provider that never answers is dropped
// after ReadTimeout, and its requests go to another.
func TestWireSilentPeer(t *testing.T) {
	root, src, data := makeDAG(t, 1<<20, 64<<10, 45)
	n := newMemNet()
	w := newFakeWire()
	w.add(t, "silent", src).answer = func(*fakeWire, cid.Cid) bool { return true }
	client := newWireClient(t, n, w, Config{ReadTimeout: 300 * time.Millisecond})
	out := dag.NewMemStore()
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Putter: out, Providers: []peer.ID{"silent"}})
	w.add(t, "late", src)
	deadline := time.Now().Add(10 * time.Second)
	for outstanding(s) == 0 { // silent is asked
		if time.Now().After(deadline) {
			t.Fatal("the silent provider was never asked")
		}
		time.Sleep(time.Millisecond)
	}
	asked := time.Now()
	for s.Progress().Peers != 0 { // silent is dropped
		if time.Now().After(deadline) {
			t.Fatal("the silent provider was never dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if waited := time.Since(asked); waited < 300*time.Millisecond {
		t.Fatalf("the silent provider was dropped after %v, before ReadTimeout", waited)
	}
	if err := w.cutOffErr("silent"); err != nil {
		t.Fatalf("the silent provider was cut off as bad: %v", err)
	}
	s.AddProviders("late")
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
}

// TestWireHas: Has asks a want-wire provider with have wants.
func TestWireHas(t *testing.T) {
	root, src, _ := makeDAG(t, 100<<10, 16<<10, 46)
	other, _, _ := makeDAG(t, 100<<10, 16<<10, 47)
	n := newMemNet()
	w := newFakeWire()
	w.add(t, "bs", src)
	client := newWireClient(t, n, w, Config{})
	have, err := client.e.Has(testContext(t, 5*time.Second), "bs", []cid.Cid{root, other})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(have) != "[true false]" {
		t.Fatalf("Has = %v, want [true false]", have)
	}
}

// TestWireSharedWants: two sessions fetching the same DAG from one
// want-wire provider at once share its wants: the root, which both want
// before the provider answers, is asked for once, and the blocks in all
// fewer than twice.
func TestWireSharedWants(t *testing.T) {
	root, src, data := makeDAG(t, 2<<20, 64<<10, 48)
	n := newMemNet()
	w := newFakeWire()
	fp := w.add(t, "bs", src)
	fp.gate = make(chan struct{})
	client := newWireClient(t, n, w, Config{})
	var sessions [2]*Session
	for i := range sessions {
		sessions[i] = client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Stream: true, Providers: []peer.ID{"bs"}})
	}
	deadline := time.Now().Add(10 * time.Second)
	for outstanding(sessions[0]) == 0 || outstanding(sessions[1]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sessions did not ask for the root")
		}
		time.Sleep(time.Millisecond)
	}
	close(fp.gate)
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			checkFile(t, s, root, data)
			if err := s.Wait(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := fp.wants(root); got != 1 {
		t.Fatalf("the root was wanted %d times", got)
	}
	total, blocks := 0, allCIDs(t, src, root)
	for _, c := range blocks {
		total += fp.wants(c)
	}
	if total >= 2*len(blocks) {
		t.Fatalf("%d wants for %d blocks", total, len(blocks))
	}
}

// outstanding counts the requests s has outstanding at its providers.
func outstanding(s *Session) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, pc := range s.peers {
		n += s.core.Outstanding(pc.sp)
	}
	return n
}

// TestWireLost: when the node says a want-wire peer is gone, sessions
// drop it at once, not after ReadTimeout, and its requests go to others.
func TestWireLost(t *testing.T) {
	root, src, data := makeDAG(t, 1<<20, 64<<10, 49)
	n := newMemNet()
	w := newFakeWire()
	w.add(t, "gone", src).answer = func(*fakeWire, cid.Cid) bool { return true }
	client := newWireClient(t, n, w, Config{ReadTimeout: time.Hour})
	out := dag.NewMemStore()
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Putter: out, Providers: []peer.ID{"gone"}})
	deadline := time.Now().Add(10 * time.Second)
	for outstanding(s) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the provider was never asked")
		}
		time.Sleep(time.Millisecond)
	}
	client.e.WireLost("gone", errors.New("disconnected"))
	if p := s.Progress().Peers; p != 0 {
		t.Fatalf("%d peers after the only one was lost", p)
	}
	w.add(t, "other", src)
	s.AddProviders("other")
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
}

// TestWireHasBeforeIdentify: a peer asked before identify has described
// it is asked over the share protocol; when it refuses (a kubo peer that
// just connected), Has waits for identify and asks over the want wire.
func TestWireHasBeforeIdentify(t *testing.T) {
	root, src, _ := makeDAG(t, 100<<10, 16<<10, 50)
	n := newMemNet()
	host := n.addHost("bs", linkOpts{}) // speaks no share protocol
	w := newFakeWire()
	w.add(t, "bs", src)
	w.identify("bs", false)
	client := newWireClient(t, n, w, Config{})
	go func() {
		for host.streamsOpened() == 0 { // refused the share protocol
			time.Sleep(time.Millisecond)
		}
		w.identify("bs", true)
	}()
	have, err := client.e.Has(testContext(t, 5*time.Second), "bs", []cid.Cid{root})
	if err != nil || len(have) != 1 || !have[0] {
		t.Fatalf("Has = %v, %v; want [true]", have, err)
	}
}
