package fetch

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/gc"
	"github.com/share-p2p/share/p2p/peer"
)

// A fake network: peers (by name) that have every block of remote, a
// Source whose sessions copy the DAG from remote once a provider is
// added, and a router that knows some providers.

type fakeNet struct {
	remote *dag.MemStore

	mu        sync.Mutex
	has       map[peer.ID]bool // peers that have the content
	connected []peer.ID
	watchers  []func(peer.ID, bool)
	routed    []peer.AddrInfo // what the router finds
	dialled   []peer.ID
	asked     map[peer.ID]int
	refuses   map[peer.ID]bool // peers whose Has fails until identify
	active    atomic.Int32     // goroutines of the fetcher inside the fake network
}

func newFakeNet() *fakeNet {
	return &fakeNet{remote: dag.NewMemStore(), has: map[peer.ID]bool{}, asked: map[peer.ID]int{}, refuses: map[peer.ID]bool{}}
}

// connectUnidentified makes p a connected peer that has the content but
// refuses to be asked until identify has run (identify), as kubo refuses
// the share protocol that p is asked over before identify says it speaks
// Bitswap.
func (n *fakeNet) connectUnidentified(p peer.ID) {
	n.mu.Lock()
	n.refuses[p] = true
	n.mu.Unlock()
	n.connect(p, true)
}

// identify reports that identify has run on p: it is up again.
func (n *fakeNet) identify(p peer.ID) {
	n.mu.Lock()
	delete(n.refuses, p)
	ws := append([]func(peer.ID, bool){}, n.watchers...)
	n.mu.Unlock()
	for _, w := range ws {
		w(p, true)
	}
}

func (n *fakeNet) network(withRouter bool) *Network {
	nw := &Network{Source: fakeSource{n}, Peers: fakePeers{n}}
	if withRouter {
		nw.Router = fakeRouter{n}
	}
	return nw
}

// connect makes p a connected peer that has the content if has.
func (n *fakeNet) connect(p peer.ID, has bool) {
	n.mu.Lock()
	n.has[p] = has
	n.connected = append(n.connected, p)
	ws := append([]func(peer.ID, bool){}, n.watchers...)
	n.mu.Unlock()
	for _, w := range ws {
		w(p, true)
	}
}

type fakeSource struct{ n *fakeNet }

func (s fakeSource) Has(ctx context.Context, p peer.ID, c cid.Cid) (bool, error) {
	s.n.active.Add(1)
	defer s.n.active.Add(-1)
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	s.n.asked[p]++
	if s.n.refuses[p] {
		return false, errors.New("protocol not supported")
	}
	return s.n.has[p], nil
}

func (s fakeSource) NewSession(ctx context.Context, root cid.Cid, opts exchange.SessionOptions) Session {
	fs := &fakeSession{n: s.n, ctx: ctx, root: root, opts: opts, provided: make(chan struct{}), done: make(chan struct{})}
	go fs.run()
	return fs
}

type fakePeers struct{ n *fakeNet }

func (p fakePeers) Self() peer.ID { return "self" }
func (p fakePeers) Peers() []peer.ID {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	return append([]peer.ID(nil), p.n.connected...)
}
func (p fakePeers) Connect(ctx context.Context, ai peer.AddrInfo) error {
	p.n.mu.Lock()
	p.n.dialled = append(p.n.dialled, ai.ID)
	p.n.mu.Unlock()
	p.n.connect(ai.ID, true)
	return nil
}

func (p fakePeers) Watch(ctx context.Context, fn func(peer.ID, bool)) {
	p.n.active.Add(1)
	defer p.n.active.Add(-1)
	var mu sync.Mutex // fn is called from one goroutine at a time
	serial := func(id peer.ID, up bool) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() == nil {
			fn(id, up)
		}
	}
	p.n.mu.Lock()
	p.n.watchers = append(p.n.watchers, serial)
	now := append([]peer.ID(nil), p.n.connected...)
	p.n.mu.Unlock()
	for _, id := range now {
		serial(id, true)
	}
	<-ctx.Done()
	mu.Lock() // no call of fn after Watch returns
	defer mu.Unlock()
}

type fakeRouter struct{ n *fakeNet }

func (r fakeRouter) Ready() bool { return true }
func (r fakeRouter) FindProviders(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo)
	r.n.mu.Lock()
	found := append([]peer.AddrInfo(nil), r.n.routed...)
	r.n.mu.Unlock()
	go func() {
		defer close(ch)
		for _, ai := range found {
			select {
			case ch <- ai:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// fakeSession waits for a provider, then stores every block of the DAG
// that is not local, in DAG order.
type fakeSession struct {
	n    *fakeNet
	ctx  context.Context
	root cid.Cid
	opts exchange.SessionOptions

	once     sync.Once
	provided chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	err      error
	prog     exchange.Progress
}

func (s *fakeSession) AddProviders(ps ...peer.ID) {
	s.mu.Lock()
	s.prog.Peers += len(ps)
	s.mu.Unlock()
	s.once.Do(func() { close(s.provided) })
}

func (s *fakeSession) run() {
	t := time.NewTimer(s.opts.ProgressTimeout)
	defer t.Stop()
	select {
	case <-s.provided:
		s.finish(s.copy())
	case <-t.C:
		s.finish(exchange.ErrNoProgress)
	case <-s.ctx.Done():
		s.finish(s.ctx.Err())
	}
}

func (s *fakeSession) copy() error {
	return dag.Walk(s.ctx, s.n.remote, s.root, dag.WalkOptions{}, func(c cid.Cid) error {
		if ok, err := s.opts.Local.Has(s.ctx, c); err != nil || ok {
			return err
		}
		b, err := s.n.remote.Get(s.ctx, c)
		if err != nil {
			return err
		}
		if err := s.opts.Putter.Put(s.ctx, c, b.Data); err != nil {
			return err
		}
		s.mu.Lock()
		s.prog.Blocks++
		s.prog.Bytes += int64(len(b.Data))
		p := s.prog
		s.mu.Unlock()
		if s.opts.Progress != nil {
			s.opts.Progress(p)
		}
		return nil
	})
}

func (s *fakeSession) finish(err error) {
	s.mu.Lock()
	s.err = err
	s.prog.Done = true
	s.mu.Unlock()
	close(s.done)
}

func (s *fakeSession) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	// Like a real session's, a block it fetched is stored before Get
	// returns it (here: the whole DAG is).
	select {
	case <-s.done:
		if err := s.Wait(); err != nil {
			return share.Block{}, err
		}
	case <-ctx.Done():
		return share.Block{}, ctx.Err()
	}
	b, err := s.n.remote.Get(ctx, c)
	return share.NewBlock(b.Data, true, nil), err
}

func (s *fakeSession) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return s.opts.Local.Has(ctx, c)
}

func (s *fakeSession) Progress() exchange.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prog
}

func (s *fakeSession) Wait() error {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *fakeSession) Done() <-chan struct{} { return s.done }
func (s *fakeSession) Close() error          { return nil }

// testFetcher is a fetcher on a fresh blockstore whose network is nw
// (nil: offline).
type testFetcher struct {
	*Fetcher
	store   *blockstore.Store
	lock    *gc.Lock
	fetched atomic.Int64
	online  atomic.Int32
}

func newTestFetcher(t *testing.T, nw *Network) *testFetcher {
	t.Helper()
	st, err := blockstore.Open(filepath.Join(t.TempDir(), "blocks"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tf := &testFetcher{store: st, lock: &gc.Lock{}}
	tf.Fetcher = New(Config{
		Store: st,
		Lock:  tf.lock,
		Online: func(ctx context.Context) (*Network, error) {
			tf.online.Add(1)
			return nw, nil
		},
		Fetched: func(n int) { tf.fetched.Add(int64(n)) },
	})
	t.Cleanup(func() {
		tf.Close()
		st.Close()
	})
	return tf
}

// addRemote imports size random bytes into the remote store in 4 KiB
// chunks and returns the root and the bytes.
func addRemote(t *testing.T, n *fakeNet, size int) (cid.Cid, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), 1))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	spec, err := chunker.Parse("size-4096")
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := dag.ImportFile(context.Background(), bytes.NewReader(data), n.remote, dag.ImportOptions{Chunker: spec})
	if err != nil {
		t.Fatal(err)
	}
	return root, data
}

func cat(ctx context.Context, f *Fetcher, root cid.Cid, opts Options) ([]byte, bool, error) {
	var out bytes.Buffer
	var wasLocal bool
	err := f.Read(ctx, root, opts, func(g share.Getter, local bool) error {
		wasLocal = local
		fr, err := dag.NewFileReader(ctx, g, root)
		if err != nil {
			return err
		}
		_, err = fr.WriteTo(&out)
		return err
	})
	return out.Bytes(), wasLocal, err
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestReadFetchesAndCommitsInBackground: Read streams a DAG from a
// connected provider, returns before its last blocks are committed, and
// Local's readers wait for that commit instead of missing the blocks.
func TestReadFetchesAndCommitsInBackground(t *testing.T) {
	fn := newFakeNet()
	root, data := addRemote(t, fn, 300<<10)
	fn.connect("p1", false)
	fn.connect("p2", true)
	f := newTestFetcher(t, fn.network(false))
	gate := make(chan struct{})
	var committed atomic.Bool
	f.cfg.BeforeCommit = func() { <-gate; committed.Store(true) }
	ctx := testContext(t)

	got, local, err := cat(ctx, f.Fetcher, root, Options{})
	if err != nil || local || !bytes.Equal(got, data) {
		t.Fatalf("cat: %d bytes, local %v, err %v", len(got), local, err)
	}
	if n := f.fetched.Load(); n < 76 {
		t.Fatalf("Fetched counted %d blocks, want the DAG's 76 or more", n)
	}
	if len(f.Transfers()) != 0 {
		t.Fatalf("transfers after the fetch: %v", f.Transfers())
	}
	// gc must wait for the commit too.
	gcDone := make(chan bool, 1)
	go func() { defer f.lock.Collector()(); gcDone <- committed.Load() }()
	hasDone := make(chan bool, 1)
	go func() {
		ok, err := f.Local().Has(ctx, root)
		hasDone <- ok && err == nil && committed.Load()
	}()
	close(gate)
	if !<-hasDone {
		t.Fatal("Local().Has did not wait for the background commit")
	}
	if !<-gcDone {
		t.Fatal("gc ran before the background commit")
	}
	if got, local, err := cat(ctx, f.Fetcher, root, Options{}); err != nil || !local || !bytes.Equal(got, data) {
		t.Fatalf("second cat: local %v, err %v", local, err)
	}
	if fn.active.Load() != 0 {
		t.Fatalf("%d fetcher goroutines still in the network", fn.active.Load())
	}
}

// TestHaveIsDurableAndHoldsGC: Have returns with every block in the store
// itself and runs then while gc cannot start.
func TestHaveIsDurableAndHoldsGC(t *testing.T) {
	fn := newFakeNet()
	root, _ := addRemote(t, fn, 100<<10)
	fn.connect("p", true)
	f := newTestFetcher(t, fn.network(false))
	ctx := testContext(t)
	var gcRan atomic.Bool
	err := f.Have(ctx, root, Options{}, func(g share.Getter) error {
		go func() { defer f.lock.Collector()(); gcRan.Store(true) }()
		return dag.Walk(ctx, f.store, root, dag.WalkOptions{CheckLeaves: true}, func(cid.Cid) error {
			if gcRan.Load() {
				return errors.New("gc ran inside then")
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if fn.active.Load() != 0 {
		t.Fatalf("%d fetcher goroutines still in the network", fn.active.Load())
	}
}

// TestNotHere: what a fetch says when content cannot come, by kind.
func TestNotHere(t *testing.T) {
	ctx := testContext(t)
	fn := newFakeNet()
	root, _ := addRemote(t, fn, 10<<10)
	noPeers := newFakeNet()

	cases := []struct {
		name   string
		online func(context.Context) (*Network, error)
		kind   errs.Kind
		want   string
	}{
		{"offline", func(context.Context) (*Network, error) { return nil, nil }, errs.NotFound, root.String() + ": not found locally"},
		{"network fails", func(context.Context) (*Network, error) { return nil, errors.New("port in use") }, errs.NotFound,
			root.String() + ": not found locally, and the network could not start: port in use"},
		{"no provider", func(context.Context) (*Network, error) { return noPeers.network(false), nil }, errs.Timeout,
			root.String() + ": not found locally, and nothing arrived in time: no peer that has it was found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFetcher(t, nil)
			f.cfg.Online = tc.online
			_, _, err := cat(ctx, f.Fetcher, root, Options{Timeout: 100 * time.Millisecond})
			if err == nil || err.Error() != tc.want || errs.KindOf(err) != tc.kind {
				t.Fatalf("err %v (kind %v), want %q (kind %v)", err, errs.KindOf(err), tc.want, tc.kind)
			}
			err = f.Have(ctx, root, Options{Timeout: 100 * time.Millisecond}, nil)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Have: err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestProvidersThatComeLater: a peer that connects during the fetch is
// asked; one that connected before and lacks the content is asked once.
func TestProvidersThatComeLater(t *testing.T) {
	fn := newFakeNet()
	root, data := addRemote(t, fn, 50<<10)
	fn.connect("empty", false)
	f := newTestFetcher(t, fn.network(false))
	ctx := testContext(t)
	res := make(chan error, 1)
	go func() {
		got, _, err := cat(ctx, f.Fetcher, root, Options{})
		if err == nil && !bytes.Equal(got, data) {
			err = errors.New("different bytes")
		}
		res <- err
	}()
	waitFor(t, func() bool {
		fn.mu.Lock()
		defer fn.mu.Unlock()
		return fn.asked["empty"] == 1 && len(fn.watchers) == 1
	})
	fn.connect("late", true)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if fn.asked["empty"] != 1 || fn.asked["late"] != 1 {
		t.Fatalf("asked %v, want each peer once", fn.asked)
	}
}

// TestAskedAgainWhenIdentified: a provider that refuses the ask made when
// it connected (kubo, which speaks Bitswap only, is asked over the share
// protocol before identify has said so) is asked again once identified,
// and the fetch gets the content from it.
func TestAskedAgainWhenIdentified(t *testing.T) {
	fn := newFakeNet()
	root, data := addRemote(t, fn, 50<<10)
	fn.connectUnidentified("kubo")
	f := newTestFetcher(t, fn.network(false))
	ctx := testContext(t)
	res := make(chan error, 1)
	go func() {
		got, _, err := cat(ctx, f.Fetcher, root, Options{})
		if err == nil && !bytes.Equal(got, data) {
			err = errors.New("different bytes")
		}
		res <- err
	}()
	waitFor(t, func() bool {
		fn.mu.Lock()
		defer fn.mu.Unlock()
		return fn.asked["kubo"] == 1 && len(fn.watchers) == 1
	})
	fn.identify("kubo")
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if fn.asked["kubo"] != 2 {
		t.Fatalf("kubo asked %d times, want twice (connected, identified)", fn.asked["kubo"])
	}
}

// TestRouting: with no connected provider, the router's providers are
// dialled and used.
func TestRouting(t *testing.T) {
	fn := newFakeNet()
	root, data := addRemote(t, fn, 50<<10)
	fn.routed = []peer.AddrInfo{{ID: "self"}, {ID: "far"}}
	f := newTestFetcher(t, fn.network(true))
	got, _, err := cat(testContext(t), f.Fetcher, root, Options{})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cat: %v", err)
	}
	if len(fn.dialled) != 1 || fn.dialled[0] != "far" {
		t.Fatalf("dialled %v, want only far (never ourselves)", fn.dialled)
	}
}

// TestGetterOnDemand: an on-demand getter reads local blocks without the
// network, fetches a missing one, and stores what it fetched at Close.
func TestGetterOnDemand(t *testing.T) {
	fn := newFakeNet()
	root, _ := addRemote(t, fn, 20<<10)
	fn.connect("p", true)
	f := newTestFetcher(t, fn.network(false))
	ctx := testContext(t)

	g := f.Getter(ctx, Options{})
	b, err := g.Get(ctx, root)
	if err != nil || !b.Verified {
		t.Fatalf("get: verified %v, err %v", b.Verified, err)
	}
	if f.online.Load() != 1 {
		t.Fatalf("network started %d times, want 1", f.online.Load())
	}
	g.Close()
	if ok, err := f.store.Has(ctx, root); !ok || err != nil {
		t.Fatalf("root not stored after Close: %v %v", ok, err)
	}
	g2 := f.Getter(ctx, Options{})
	defer g2.Close()
	if b, err := g2.Get(ctx, root); err != nil || b.Verified {
		t.Fatalf("local get: verified %v (storage is never), err %v", b.Verified, err)
	}
	if f.online.Load() != 1 {
		t.Fatal("a local block started the network")
	}
}

// TestCloseEndsOnDemandFetches: Close ends a request's fetch that is
// still waiting and returns once its blocks are committed.
func TestCloseEndsOnDemandFetches(t *testing.T) {
	fn := newFakeNet() // nobody has anything: the fetch waits
	root, _ := addRemote(t, fn, 20<<10)
	f := newTestFetcher(t, fn.network(false))
	g := f.Getter(context.Background(), Options{Timeout: time.Hour})
	res := make(chan error, 1)
	go func() {
		_, err := g.Get(context.Background(), root)
		res <- err
	}()
	waitFor(t, func() bool { return len(f.Transfers()) == 1 })
	f.Close()
	if err := <-res; err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("get after Close: %v", err)
	}
	if len(f.Transfers()) != 0 {
		t.Fatal("a transfer is listed after Close")
	}
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}
