package exchange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/p2p/peer"
)

const testProto = "/test/blocks/1.0.0"

// makeDAG imports size random bytes in chunks of chunk bytes.
func makeDAG(t testing.TB, size, chunk int, seed uint64) (cid.Cid, *dag.MemStore, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	spec, err := chunker.FixedSize(chunk)
	if err != nil {
		t.Fatal(err)
	}
	st := dag.NewMemStore()
	root, _, err := dag.ImportFile(context.Background(), bytes.NewReader(data), st, dag.ImportOptions{Chunker: spec})
	if err != nil {
		t.Fatal(err)
	}
	return root, st, data
}

// countingStore counts the blocks served from it and can run a hook.
type countingStore struct {
	Store
	gets atomic.Int64
	hook func(n int64)
}

func (s *countingStore) BorrowParts(ctx context.Context, c cid.Cid) ([][]byte, func(), error) {
	n := s.gets.Add(1)
	if s.hook != nil {
		s.hook(n)
	}
	return s.Store.BorrowParts(ctx, c)
}

// testPeer is a host with an exchange.
type testPeer struct {
	h     *memHost
	e     *Exchange
	store *countingStore
}

func newTestPeer(t testing.TB, n *memNet, name string, st Store, opts linkOpts, cfg Config) *testPeer {
	t.Helper()
	h := n.addHost(name, opts)
	cs := &countingStore{Store: st}
	e, err := New(h, testProto, cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return &testPeer{h: h, e: e, store: cs}
}

// badPeers records OnBadPeer calls.
type badPeers struct {
	mu sync.Mutex
	m  map[peer.ID]error
}

func (b *badPeers) report(p peer.ID, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[peer.ID]error)
	}
	b.m[p] = err
}

func (b *badPeers) get(p peer.ID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[p]
}

func testContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkFile reads the file root from st and compares it with want.
func checkFile(t testing.TB, g share.Getter, root cid.Cid, want []byte) {
	t.Helper()
	r, err := dag.NewFileReader(context.Background(), g, root)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := r.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, not the %d imported", got.Len(), len(want))
	}
}

func providerIDs(ps ...*testPeer) []peer.ID {
	var ids []peer.ID
	for _, p := range ps {
		ids = append(ids, p.h.id)
	}
	return ids
}

func TestFetchOneProvider(t *testing.T) {
	root, src, data := makeDAG(t, 3<<20, 16<<10, 1)
	n := newMemNet()
	prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
	out := dag.NewMemStore()
	client := newTestPeer(t, n, "client", out, linkOpts{}, Config{})
	var last Progress
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{
		Local: out, Putter: out, Providers: providerIDs(prov),
		Progress: func(p Progress) { last = p },
	})
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != src.Len() {
		t.Fatalf("%d blocks stored, want %d", out.Len(), src.Len())
	}
	checkFile(t, out, root, data)
	if !last.Done || last.Blocks != src.Len() || last.Missing != 0 {
		t.Fatalf("last progress %+v, want %d blocks, done", last, src.Len())
	}
	if got := prov.store.gets.Load(); got != int64(src.Len()) {
		t.Fatalf("provider served %d blocks, want %d", got, src.Len())
	}
}

func TestFetchRawRoot(t *testing.T) {
	root, src, data := makeDAG(t, 1000, 16<<10, 2)
	if root.Type() != dag.Raw {
		t.Fatal("want a raw root")
	}
	n := newMemNet()
	prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
	out := dag.NewMemStore()
	client := newTestPeer(t, n, "client", out, linkOpts{}, Config{})
	s := client.e.NewSession(testContext(t, 10*time.Second), root, SessionOptions{Putter: out, Providers: providerIDs(prov)})
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
}

// TestFetchManyProviders: a fetch from 4 providers, whose links are rate
// limited, spreads over them all. It runs in a synctest bubble: the links'
// rates are in its time, so a provider starved of CPU in a loaded run
// does not fall behind the others (one served 29 of 259 blocks so).
func TestFetchManyProviders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, src, data := makeDAG(t, 4<<20, 16<<10, 3)
		n := newMemNet()
		var provs []*testPeer
		for i := range 4 {
			// Rate limits keep one provider from doing all the work.
			provs = append(provs, newTestPeer(t, n, fmt.Sprint("prov", i), src, linkOpts{rate: 20e6, latency: time.Millisecond}, Config{}))
		}
		out := dag.NewMemStore()
		client := newTestPeer(t, n, "client", out, linkOpts{}, Config{})
		s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Putter: out, Providers: providerIDs(provs...)})
		if err := s.Wait(); err != nil {
			t.Fatal(err, "\n", s.dump())
		}
		checkFile(t, out, root, data)
		for _, p := range provs {
			if got := p.store.gets.Load(); got < int64(src.Len()/8) {
				t.Errorf("%s served %d of %d blocks", p.h.id, got, src.Len())
			}
		}
	})
}

func TestAddProvidersLater(t *testing.T) {
	root, src, data := makeDAG(t, 1<<20, 16<<10, 4)
	n := newMemNet()
	prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
	out := dag.NewMemStore()
	client := newTestPeer(t, n, "client", out, linkOpts{}, Config{ProgressTimeout: 5 * time.Second})
	s := client.e.NewSession(testContext(t, 10*time.Second), root, SessionOptions{Putter: out})
	s.AddProviders(prov.h.id)
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
}

func TestProviderDies(t *testing.T) {
	root, src, data := makeDAG(t, 4<<20, 16<<10, 5)
	n := newMemNet()
	good := newTestPeer(t, n, "good", src, linkOpts{rate: 20e6}, Config{})
	dying := newTestPeer(t, n, "dying", src, linkOpts{rate: 20e6}, Config{})
	var once sync.Once
	dying.store.hook = func(k int64) {
		if k == 20 {
			once.Do(func() { go dying.h.kill() })
		}
	}
	out := dag.NewMemStore()
	client := newTestPeer(t, n, "client", out, linkOpts{}, Config{})
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Putter: out, Providers: providerIDs(good, dying)})
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
	if got := dying.store.gets.Load(); got < 20 || got > int64(src.Len()/2) {
		t.Fatalf("the dying provider served %d blocks", got)
	}
}

// corruptStore serves wrong bytes for every third leaf.
type corruptStore struct{ *dag.MemStore }

func (s corruptStore) BorrowParts(ctx context.Context, c cid.Cid) ([][]byte, func(), error) {
	parts, release, err := s.MemStore.BorrowParts(ctx, c)
	if err == nil && c.Type() == dag.Raw && c.Hash()[5]%3 == 0 {
		b := bytes.Join(parts, nil)
		b[len(b)/2] ^= 1
		parts = [][]byte{b}
	}
	return parts, release, err
}

func TestCorruptProvider(t *testing.T) {
	root, src, data := makeDAG(t, 4<<20, 16<<10, 6)
	n := newMemNet()
	good := newTestPeer(t, n, "good", src, linkOpts{rate: 20e6}, Config{})
	bad := newTestPeer(t, n, "bad", corruptStore{src}, linkOpts{}, Config{})
	var reports badPeers
	out := dag.NewMemStore()
	client := newTestPeer(t, n, "client", out, linkOpts{}, Config{OnBadPeer: reports.report})
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Putter: out, Providers: providerIDs(bad, good)})
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
	if err := reports.get("bad"); !errors.Is(err, dag.ErrHashMismatch) {
		t.Fatalf("bad provider reported with %v, want a hash mismatch", err)
	}
	if err := reports.get("good"); err != nil {
		t.Fatalf("good provider reported: %v", err)
	}
	if got := bad.h.streamsOpened(); got != 1 {
		t.Fatalf("bad provider was asked on %d streams", got)
	}
}

// liar answers every WANT with a valid block nobody asked for.
func liar(st share.Stream) {
	defer st.Reset()
	fr := newFrameReader(st)
	for {
		m, buf, err := fr.next()
		putBuf(buf)
		if err != nil {
			return
		}
		data := []byte("not what you asked for " + m.cid.String())
		c := dag.Sum(dag.Raw, data)
		frame := appendBlockHeader(nil, c, len(data))
		if _, err := st.Write(append(frame, data...)); err != nil {
			return
		}
	}
}

func TestUnrequestedBlock(t *testing.T) {
	root, src, data := makeDAG(t, 1<<20, 16<<10, 7)
	n := newMemNet()
	good := newTestPeer(t, n, "good", src, linkOpts{}, Config{})
	n.addHost("liar", linkOpts{}).SetHandler(testProto, liar)
	reported := make(chan error, 1)
	out := dag.NewMemStore()
	client := newTestPeer(t, n, "client", out, linkOpts{}, Config{OnBadPeer: func(p peer.ID, err error) { reported <- err }})
	ctx := testContext(t, 20*time.Second)
	s := client.e.NewSession(ctx, root, SessionOptions{Putter: out, Providers: []peer.ID{"liar"}})
	select {
	case err := <-reported:
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("liar reported with %v, want a protocol violation", err)
		}
	case <-ctx.Done():
		t.Fatal("liar not reported")
	}
	s.AddProviders(good.h.id, "liar")
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
}

func TestOversizedFrameFromServer(t *testing.T) {
	root, src, data := makeDAG(t, 256<<10, 16<<10, 8)
	n := newMemNet()
	good := newTestPeer(t, n, "good", src, linkOpts{}, Config{})
	n.addHost("huge", linkOpts{}).SetHandler(testProto, func(st share.Stream) {
		defer st.Reset()
		var b []byte
		b = append(b, 0xff, 0xff, 0xff, 0xff, 0x0f) // a 4 GiB frame
		st.Write(b)
		io.Copy(io.Discard, st)
	})
	reported := make(chan error, 1)
	out := dag.NewMemStore()
	client := newTestPeer(t, n, "client", out, linkOpts{}, Config{OnBadPeer: func(p peer.ID, err error) { reported <- err }})
	ctx := testContext(t, 20*time.Second)
	s := client.e.NewSession(ctx, root, SessionOptions{Putter: out, Providers: []peer.ID{"huge"}})
	select {
	case err := <-reported:
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("huge reported with %v, want a frame too large", err)
		}
	case <-ctx.Done():
		t.Fatal("huge not reported")
	}
	s.AddProviders(good.h.id)
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, root, data)
}

func TestOversizedFrameToServer(t *testing.T) {
	n := newMemNet()
	var reports badPeers
	prov := newTestPeer(t, n, "prov", dag.NewMemStore(), linkOpts{}, Config{OnBadPeer: reports.report})
	client := n.addHost("client", linkOpts{})
	st, err := client.NewStream(context.Background(), prov.h.id, testProto)
	if err != nil {
		t.Fatal(err)
	}
	frame := []byte{0x80, 0x80, 0x80, 0x10} // 32 MiB
	if _, err := st.Write(frame); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, errReset) {
		t.Fatalf("read after an oversized frame: %v, want a reset", err)
	}
	if err := reports.get("client"); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("client reported with %v", err)
	}
}

func TestResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, src, data := makeDAG(t, 4<<20, 16<<10, 9)
		n := newMemNet()
		prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
		out := dag.NewMemStore()
		client := newTestPeer(t, n, "client", out, linkOpts{}, Config{})

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		half := &cancellingPutter{Putter: out, after: src.Len() / 2, cancel: cancel}
		s := client.e.NewSession(ctx, root, SessionOptions{Local: out, Putter: half, Providers: providerIDs(prov)})
		if err := s.Wait(); !errors.Is(err, context.Canceled) {
			t.Fatalf("first fetch: %v, want canceled", err)
		}
		have := out.Len()
		if have < src.Len()/2 || have == src.Len() {
			t.Fatalf("%d of %d blocks after the first fetch", have, src.Len())
		}
		// The provider may still be loading answers to the first session's
		// stream (several at a time) when it ends: count from when it is done.
		synctest.Wait()
		prov.e.mu.Lock()
		busy := len(prov.e.peers)
		prov.e.mu.Unlock()
		if busy != 0 {
			t.Fatal("the provider still serves the first session's stream")
		}
		served := prov.store.gets.Load()

		var last Progress
		s = client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{
			Local: out, Putter: out, Providers: providerIDs(prov),
			Progress: func(p Progress) { last = p },
		})
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, out, root, data)
		if got, want := prov.store.gets.Load()-served, int64(src.Len()-have); got != want {
			t.Fatalf("second fetch requested %d blocks, %d were missing", got, want)
		}
		if last.LocalBlocks != have || last.Blocks != src.Len()-have {
			t.Fatalf("progress %+v, want %d local blocks and %d fetched", last, have, src.Len()-have)
		}
	})
}

// cancellingPutter cancels a context after storing some blocks.
type cancellingPutter struct {
	share.Putter
	n, after int
	cancel   func()
}

func (p *cancellingPutter) Put(ctx context.Context, c cid.Cid, data []byte) error {
	if err := p.Putter.Put(ctx, c, data); err != nil {
		return err
	}
	if p.n++; p.n == p.after {
		p.cancel()
	}
	return nil
}

func TestNothingToFetch(t *testing.T) {
	root, src, _ := makeDAG(t, 1<<20, 16<<10, 10)
	n := newMemNet()
	client := newTestPeer(t, n, "client", src, linkOpts{}, Config{})
	s := client.e.NewSession(testContext(t, 5*time.Second), root, SessionOptions{Local: src, Putter: src})
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if p := s.Progress(); p.Blocks != 0 || p.LocalBlocks != src.Len() {
		t.Fatalf("progress %+v", p)
	}
}

func TestNoProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, _, _ := makeDAG(t, 1<<20, 16<<10, 11)
		n := newMemNet()
		empty := newTestPeer(t, n, "empty", dag.NewMemStore(), linkOpts{}, Config{})
		client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{ProgressTimeout: 300 * time.Millisecond})
		start := time.Now()
		s := client.e.NewSession(testContext(t, 10*time.Second), root, SessionOptions{Providers: providerIDs(empty)})
		if err := s.Wait(); !errors.Is(err, ErrNoProgress) {
			t.Fatalf("fetch from a peer without the DAG: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("gave up after %v", d)
		}
	})
}

// TestSessionProgressTimeout: a session's own progress timeout replaces
// the exchange's, both ways (the fetcher sets each fetch's there).
func TestSessionProgressTimeout(t *testing.T) {
	for _, tc := range []struct{ cfg, session, want time.Duration }{
		{time.Hour, 2 * time.Second, 2 * time.Second},
		{3 * time.Second, 0, 3 * time.Second},
		{time.Second, time.Minute, time.Minute},
	} {
		synctest.Test(t, func(t *testing.T) {
			root, _, _ := makeDAG(t, 64<<10, 16<<10, 11)
			n := newMemNet()
			empty := newTestPeer(t, n, "empty", dag.NewMemStore(), linkOpts{}, Config{})
			client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{ProgressTimeout: tc.cfg})
			start := time.Now()
			s := client.e.NewSession(testContext(t, 2*time.Hour), root, SessionOptions{Providers: providerIDs(empty), ProgressTimeout: tc.session})
			if err := s.Wait(); !errors.Is(err, ErrNoProgress) {
				t.Fatalf("fetch from a peer without the DAG: %v", err)
			}
			// The watchdog ticks every 100 ms (a quarter of short timeouts).
			if d := time.Since(start); d < tc.want || d > tc.want+200*time.Millisecond {
				t.Fatalf("config %v, session %v: gave up after %v, want %v", tc.cfg, tc.session, d, tc.want)
			}
		})
	}
}

func TestStreamingGetter(t *testing.T) {
	root, src, data := makeDAG(t, 8<<20, 64<<10, 12)
	n := newMemNet()
	var provs []*testPeer
	for i := range 3 {
		provs = append(provs, newTestPeer(t, n, fmt.Sprint("prov", i), src, linkOpts{rate: 50e6}, Config{}))
	}
	const budget = 1 << 20
	client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{MaxInFlightBytes: budget})
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Stream: true, Providers: providerIDs(provs...)})
	go func() {
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			fmt.Println(s.dump())
			buf := make([]byte, 1<<20)
			fmt.Println(string(buf[:runtime.Stack(buf, true)]))
		}
	}()
	checkFile(t, s, root, data)
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	// Blocks the reader waits for may exceed the budget: 8 of read-ahead.
	if s.peakUsed > budget+9*64<<10 {
		t.Fatalf("%d bytes in flight, budget %d", s.peakUsed, budget)
	}
}

func TestHas(t *testing.T) {
	root, src, _ := makeDAG(t, 100<<10, 16<<10, 13)
	other, _, _ := makeDAG(t, 100<<10, 16<<10, 14)
	n := newMemNet()
	prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
	client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{})
	have, err := client.e.Has(testContext(t, 5*time.Second), prov.h.id, []cid.Cid{root, other, root})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true}; fmt.Sprint(have) != fmt.Sprint(want) {
		t.Fatalf("Has = %v, want %v", have, want)
	}
}

// TestServes: a peer the server does not serve is told DONT_HAVE for
// every block, and a session of it gets nothing; one it serves gets all.
func TestServes(t *testing.T) {
	root, src, data := makeDAG(t, 100<<10, 16<<10, 13)
	n := newMemNet()
	prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{Serves: func(p peer.ID) bool { return p == "friend" }})
	stranger := newTestPeer(t, n, "stranger", dag.NewMemStore(), linkOpts{}, Config{ProgressTimeout: 200 * time.Millisecond})
	friend := newTestPeer(t, n, "friend", dag.NewMemStore(), linkOpts{}, Config{})
	ctx := testContext(t, 10*time.Second)
	if have, err := stranger.e.Has(ctx, prov.h.id, []cid.Cid{root}); err != nil || have[0] {
		t.Fatalf("stranger: Has = %v, %v", have, err)
	}
	sess := stranger.e.NewSession(ctx, root, SessionOptions{Providers: []peer.ID{prov.h.id}})
	if err := sess.Wait(); err == nil {
		t.Fatal("stranger fetched the DAG")
	}
	if got := prov.store.gets.Load(); got != 0 {
		t.Fatalf("%d blocks loaded for a stranger", got)
	}
	store := dag.NewMemStore()
	sess = friend.e.NewSession(ctx, root, SessionOptions{Providers: []peer.ID{prov.h.id}, Putter: store})
	if err := sess.Wait(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, store, root, data)
}

func TestServerLimits(t *testing.T) {
	root, src, _ := makeDAG(t, 4<<20, 16<<10, 15)
	n := newMemNet()
	cfg := Config{MaxRequests: 8, MaxBufferedBytes: 64 << 10}
	prov := newTestPeer(t, n, "prov", src, linkOpts{}, cfg)
	client := n.addHost("client", linkOpts{})

	cids := allCIDs(t, src, root)

	st, err := client.NewStream(context.Background(), prov.h.id, testProto)
	if err != nil {
		t.Fatal(err)
	}
	// Ask for everything at once without reading: the server must not
	// queue more than its limits, and the writes must stall.
	var out []byte
	for _, c := range cids {
		out = appendMessage(out, msgWantBlock, c)
	}
	written := make(chan error, 1)
	go func() {
		_, err := st.Write(out)
		if err == nil {
			err = st.CloseWrite()
		}
		written <- err
	}()
	fr := newFrameReader(st)
	got := 0
	for {
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, buf, err := fr.next()
		putBuf(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.typ != msgBlock {
			t.Fatalf("got %s", m.typ)
		}
		got++
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if got != len(cids) {
		t.Fatalf("%d blocks for %d wants", got, len(cids))
	}
	prov.e.Close() // waits for the server's goroutines
	prov.e.mu.Lock()
	defer prov.e.mu.Unlock()
	if len(prov.e.peers) != 0 {
		t.Fatal("quota left after the stream ended")
	}
	if p := prov.e.peakReqs; p > int64(cfg.MaxRequests) || p == 0 {
		t.Fatalf("%d requests queued, limit %d", p, cfg.MaxRequests)
	}
	if p := prov.e.peakBytes; p > int64(cfg.MaxBufferedBytes) || p == 0 {
		t.Fatalf("%d bytes buffered, limit %d", p, cfg.MaxBufferedBytes)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{MaxRequests: -1},
		{MinWindow: 10, MaxWindow: 5},
		{ReadTimeout: -time.Second},
	} {
		if _, err := New(newMemNet().addHost("x", linkOpts{}), testProto, dag.NewMemStore(), c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

// allCIDs lists the blocks of the DAG under root, in DAG order.
func allCIDs(t testing.TB, src share.Getter, root cid.Cid) []cid.Cid {
	t.Helper()
	var cids []cid.Cid
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		cids = append(cids, c)
		if c.Type() != dag.DagPB {
			return
		}
		b, err := src.Get(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		nd, err := dag.DecodePBNode(b.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range nd.Links {
			walk(l.Hash)
		}
	}
	walk(root)
	return cids
}

// TestSwarmThroughput fetches from 4 rate-limited providers: each must
// carry a fair share of the blocks (a session that used one provider
// would get 1/4 of the rate). The rate itself is logged here and measured
// by BenchmarkFetchSwarm: a timed assertion would fail on a busy machine.
func TestSwarmThroughput(t *testing.T) {
	// Links slow enough that the simulated rate, not the CPU, is the limit
	// even under -race on a busy 2-core CI machine (20 MB/s links let the
	// client's CPU decide who served what).
	const rate = 5e6
	root, src, data := makeDAG(t, 32<<20, 256<<10, 16)
	n := newMemNet()
	var provs []*testPeer
	served := make([]atomic.Int64, 4)
	for i := range 4 {
		cfg := Config{OnServed: func(int) { served[i].Add(1) }}
		provs = append(provs, newTestPeer(t, n, fmt.Sprint("prov", i), src, linkOpts{rate: rate, latency: 2 * time.Millisecond}, cfg))
	}
	client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{})
	start := time.Now()
	s := client.e.NewSession(testContext(t, 60*time.Second), root, SessionOptions{Stream: true, Providers: providerIDs(provs...)})
	checkFile(t, s, root, data)
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	got := float64(len(data)) / time.Since(start).Seconds()
	var total int64
	for i := range served {
		total += served[i].Load()
	}
	t.Logf("%.1f MB/s from 4 providers of %.0f MB/s, %d duplicate blocks, served %d/%d/%d/%d",
		got/1e6, rate/1e6, s.Progress().Duplicates, served[0].Load(), served[1].Load(), served[2].Load(), served[3].Load())
	for i := range served {
		if share := float64(served[i].Load()) / float64(total); share < 0.15 {
			t.Fatalf("provider %d served %.0f%% of the blocks: the session does not swarm", i, 100*share)
		}
	}
	// Blocks are asked of a second peer only at the tail (endgame): a
	// session that duplicated as it went would show tens.
	if d := s.Progress().Duplicates; d > src.Len()/10 {
		t.Fatalf("%d duplicate blocks of %d: duplicates are not limited to the tail", d, src.Len())
	}
}

func TestSlowProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, src, data := makeDAG(t, 16<<20, 256<<10, 17)
		n := newMemNet()
		fast := newTestPeer(t, n, "fast", src, linkOpts{rate: 50e6}, Config{})
		slow := newTestPeer(t, n, "slow", src, linkOpts{rate: 1e6}, Config{})
		client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{})
		start := time.Now()
		s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Stream: true, Providers: providerIDs(slow, fast)})
		checkFile(t, s, root, data)
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
		// Alone, the fast provider needs 0.34 s; the slow one would need 17 s.
		if d := time.Since(start); d > 3*time.Second && !raceEnabled {
			t.Fatalf("took %v: the slow provider held the fetch back", d)
		}
		t.Logf("slow provider served %d of %d blocks in %v", slow.store.gets.Load(), src.Len(), time.Since(start))
	})
}

// TestSlowloris: a provider that starts a block and then sends one byte
// every 100 ms is given up after ReadTimeout; the honest provider serves
// the DAG with a bounded delay.
func TestSlowloris(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, src, data := makeDAG(t, 2<<20, 64<<10, 9)
		n := newMemNet()
		good := newTestPeer(t, n, "good", src, linkOpts{}, Config{})
		slow := n.addHost("slow", linkOpts{})
		exited := make(chan struct{}, 8)
		slow.SetHandler(testProto, func(st share.Stream) {
			defer func() { exited <- struct{}{} }()
			defer st.Reset()
			fr := newFrameReader(st)
			m, buf, err := fr.next()
			putBuf(buf)
			if err != nil {
				return
			}
			b, _ := src.Get(context.Background(), m.cid)
			block := b.Data
			frame := append(appendBlockHeader(nil, m.cid, len(block)), block...)
			for _, b := range frame {
				if _, err := st.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond) // the slowloris's pace, in the bubble's fake time
			}
		})
		out := dag.NewMemStore()
		client := newTestPeer(t, n, "client", out, linkOpts{}, Config{ReadTimeout: 500 * time.Millisecond})
		start := time.Now()
		s := client.e.NewSession(testContext(t, 30*time.Second), root, SessionOptions{Putter: out, Providers: []peer.ID{"slow", good.h.id}})
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, out, root, data)
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("the slowloris provider held the fetch up for %v", took)
		} else {
			t.Logf("fetch with a slowloris provider took %v", took)
		}
		// The bubble's clock stops when the test returns: wait for the
		// slowloris to find its stream gone.
		for range slow.streamsOpened() {
			<-exited
		}
	})
}

// TestMaxBlockSize: a node that accepts blocks of at most 64 KiB cuts off
// a peer that sends a 256 KiB block; the limit cannot exceed the
// protocol's.
func TestMaxBlockSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, src, _ := makeDAG(t, 1<<20, 256<<10, 12)
		n := newMemNet()
		prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
		reported := make(chan error, 8)
		client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{
			MaxBlockSize: 64 << 10, ProgressTimeout: 2 * time.Second,
			OnBadPeer: func(p peer.ID, err error) { reported <- err },
		})
		s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Providers: []peer.ID{prov.h.id}})
		select {
		case err := <-reported:
			if !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("peer reported with %v, want a frame too large", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a block above MaxBlockSize was not refused")
		}
		s.Close()
		if _, err := (Config{MaxBlockSize: MaxBlockSize + 1}).withDefaults(); err == nil {
			t.Fatal("MaxBlockSize above the protocol's maximum accepted")
		}
	})
}

// holdingStore holds back the Gets of the blocks in slow (of every block
// when slow is nil) until Release, as blocks that come from a busy disk
// would be, and counts how many wait at once.
type holdingStore struct {
	Store
	slow     map[cid.Cid]bool
	release  chan struct{}
	released bool // used by the test goroutine only

	mu            sync.Mutex
	waiting, peak int
}

// holdBlocks returns a holdingStore over src holding back slow (every
// block if none is given).
func holdBlocks(src Store, slow ...cid.Cid) *holdingStore {
	s := &holdingStore{Store: src, release: make(chan struct{})}
	if slow != nil {
		s.slow = make(map[cid.Cid]bool)
		for _, c := range slow {
			s.slow[c] = true
		}
	}
	return s
}

func (s *holdingStore) Release() {
	if !s.released {
		s.released = true
		close(s.release)
	}
}

func (s *holdingStore) BorrowParts(ctx context.Context, c cid.Cid) ([][]byte, func(), error) {
	if s.slow == nil || s.slow[c] {
		s.mu.Lock()
		s.waiting++
		s.peak = max(s.peak, s.waiting)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
		}()
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	return s.Store.BorrowParts(ctx, c)
}

func (s *holdingStore) peakWaiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// serveHeld starts a provider serving from store (released before it
// closes) and asks it for cids on a raw stream; the returned function reads
// the CID of the next BLOCK.
func serveHeld(t *testing.T, store *holdingStore, cids []cid.Cid) (nextBlock func() cid.Cid) {
	t.Helper()
	n := newMemNet()
	prov := newTestPeer(t, n, "prov", store, linkOpts{}, Config{})
	t.Cleanup(store.Release) // runs before the exchange closes
	client := n.addHost("client", linkOpts{})
	st, err := client.NewStream(context.Background(), prov.h.id, testProto)
	if err != nil {
		t.Fatal(err)
	}
	var wants []byte
	for _, c := range cids {
		wants = appendMessage(wants, msgWantBlock, c)
	}
	if _, err := st.Write(wants); err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(st)
	return func() cid.Cid {
		t.Helper()
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, buf, err := fr.next()
		putBuf(buf)
		if err != nil || m.typ != msgBlock {
			t.Fatalf("read %s: %v", m.typ, err)
		}
		return m.cid
	}
}

// TestSlowBlockDoesNotHoldUpOthers: the server answers the requests after
// a block that is slow to load while that one is still loading.
func TestSlowBlockDoesNotHoldUpOthers(t *testing.T) {
	root, src, _ := makeDAG(t, 1<<20, 16<<10, 21)
	cids := allCIDs(t, src, root)[:6]
	store := holdBlocks(src, cids[0])
	next := serveHeld(t, store, cids)
	for range cids[1:] {
		if c := next(); c == cids[0] {
			t.Fatal("the held-back block was sent")
		}
	}
	store.Release()
	if c := next(); c != cids[0] {
		t.Fatalf("got %s, want the held-back block", c)
	}
}

// TestSlowLoadsBounded: when every block is slow to load, a stream loads
// several at once, but no more than maxLoads.
func TestSlowLoadsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, src, _ := makeDAG(t, 1<<20, 16<<10, 22)
		cids := allCIDs(t, src, root)[:20]
		store := holdBlocks(src)
		next := serveHeld(t, store, cids)
		time.Sleep(maxLoads * slowLoad) // a spill per slowLoad
		synctest.Wait()
		if p := store.peakWaiting(); p < maxLoads {
			t.Fatalf("%d loads at once, want %d", p, maxLoads)
		}
		time.Sleep(10 * slowLoad) // time for more spills, were they allowed
		synctest.Wait()
		if p := store.peakWaiting(); p != maxLoads {
			t.Fatalf("%d loads at once, limit %d", p, maxLoads)
		}
		store.Release()
		for range cids {
			next()
		}
	})
}

// TestLanes: a fast provider is asked on several streams (each has its own
// transport window), never more than StreamsPerPeer; a slow one, whose
// window of requests fits one stream, on one, so that it answers in the
// order asked.
func TestLanes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		link     linkOpts
		size     int
		chunk    int
		streams  int
		window   int // MinWindow: the fast case asks for 8 MiB at once
		min, max int
	}{
		{"fast", linkOpts{}, 24 << 20, 1 << 20, 3, 8, 2, 3},
		{"slow", linkOpts{rate: 5e6, latency: 2 * time.Millisecond}, 8 << 20, 256 << 10, 4, 0, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, src, data := makeDAG(t, tc.size, tc.chunk, 21)
			n := newMemNet()
			prov := newTestPeer(t, n, "prov", src, tc.link, Config{})
			out := dag.NewMemStore()
			client := newTestPeer(t, n, "client", out, linkOpts{}, Config{StreamsPerPeer: tc.streams, MinWindow: tc.window})
			s := client.e.NewSession(testContext(t, 30*time.Second), root, SessionOptions{Putter: out, Providers: providerIDs(prov)})
			if err := s.Wait(); err != nil {
				t.Fatal(err)
			}
			checkFile(t, out, root, data)
			if got := prov.h.streamsOpened(); got < tc.min || got > tc.max {
				t.Fatalf("asked on %d streams, want %d to %d", got, tc.min, tc.max)
			}
		})
	}
}

// pausingWriter stalls once, after its first after bytes, as a consumer
// that stops reading for a while (a pipe into a busy program).
type pausingWriter struct {
	bytes.Buffer
	after  int
	pause  time.Duration
	paused bool
}

func (w *pausingWriter) Write(p []byte) (int, error) {
	if !w.paused && w.Len() >= w.after {
		w.paused = true
		time.Sleep(w.pause) // the slow reader itself, in its test's synctest bubble
	}
	return w.Buffer.Write(p)
}

// TestReaderPauseOutlastsServerIdle: a streaming session whose reader stops
// for longer than the provider's idle timeout (the provider closes the
// idle streams meanwhile) goes on when the reader comes back.
func TestReaderPauseOutlastsServerIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, src, data := makeDAG(t, 48<<20, 1<<20, 22)
		n := newMemNet()
		prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{IdleTimeout: 300 * time.Millisecond})
		// A budget well below the file: the session must stop asking while
		// the reader is away.
		client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{MaxInFlightBytes: 12 << 20})
		s := client.e.NewSession(testContext(t, 30*time.Second), root, SessionOptions{Stream: true, Providers: providerIDs(prov)})
		r, err := dag.NewFileReader(context.Background(), s, root)
		if err != nil {
			t.Fatal(err)
		}
		w := &pausingWriter{after: 4 << 20, pause: 1500 * time.Millisecond}
		if _, err := r.WriteTo(w); err != nil {
			t.Fatalf("read after the pause: %v", err)
		}
		if !bytes.Equal(w.Bytes(), data) {
			t.Fatalf("read %d bytes, not the %d imported", w.Len(), len(data))
		}
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFetchFromBlockstore: a provider whose store is a blockstore serves
// small blocks through a blockstore.Reader (and big ones it lends): a DAG
// of small leaves under inner nodes, and a file of big leaves, arrive
// whole.
func TestFetchFromBlockstore(t *testing.T) {
	n := newMemNet()
	bs, err := blockstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	h := n.addHost("prov", linkOpts{})
	e, err := New(h, testProto, bs, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i, chunk := range []int{1 << 10, 200 << 10} {
		root, src, data := makeDAG(t, 2<<20, chunk, uint64(10+i))
		b := bs.NewBatch()
		for _, c := range allCIDs(t, src, root) {
			blk, err := src.Get(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Put(t.Context(), c, blk.Data); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
		b.Close()
		out := dag.NewMemStore()
		client := newTestPeer(t, n, fmt.Sprint("client", i), out, linkOpts{}, Config{})
		s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{
			Local: out, Putter: out, Providers: []peer.ID{h.id},
		})
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
		if out.Len() != src.Len() {
			t.Fatalf("%d blocks stored, want %d", out.Len(), src.Len())
		}
		checkFile(t, out, root, data)
	}
}
