package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/share-p2p/share/p2p"
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
	silent    map[peer.ID]bool // peers whose ask fails (no answer)
	flaky     map[peer.ID]int  // peers whose first asks fail, how many
	limited   map[peer.ID]bool // peers only reachable through a relay that limits data
	noDHT     bool             // the router knows no peers
	active    atomic.Int32     // goroutines of the fetcher inside the fake network
	sessions  atomic.Int32     // sessions started
}

func newFakeNet() *fakeNet {
	return &fakeNet{remote: dag.NewMemStore(), has: map[peer.ID]bool{}, asked: map[peer.ID]int{}, silent: map[peer.ID]bool{}, flaky: map[peer.ID]int{}, limited: map[peer.ID]bool{}}
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
	if s.n.silent[p] {
		return false, errors.New("stream reset")
	}
	if s.n.flaky[p] > 0 {
		s.n.flaky[p]--
		return false, errors.New("stream reset")
	}
	if s.n.limited[p] {
		return false, limitedConn(p)
	}
	return s.n.has[p], nil
}

func (s fakeSource) NewSession(ctx context.Context, root cid.Cid, opts exchange.SessionOptions) Session {
	s.n.sessions.Add(1)
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
	limited := p.n.limited[ai.ID]
	p.n.mu.Unlock()
	if limited {
		return limitedConn(ai.ID)
	}
	p.n.connect(ai.ID, true)
	return nil
}

// limitedConn is the host's error for a peer only reachable through a
// relay that limits data.
func limitedConn(p peer.ID) error {
	return errs.E(errs.Unreachable, fmt.Errorf("ask %s: peer %s is %w", p, p.ShortString(), p2p.ErrLimitedConn))
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

func (r fakeRouter) Ready() bool {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	return !r.n.noDHT
}
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

// TestConcurrentReadsFetchOnce: a Read (or Have) of a DAG that another
// Read is fetching waits for that fetch, seeing its progress, and then
// reads what it stored: one session, not two.
func TestConcurrentReadsFetchOnce(t *testing.T) {
	fn := newFakeNet()
	root, data := addRemote(t, fn, 200<<10)
	fn.connect("p", true)
	f := newTestFetcher(t, fn.network(false))
	ctx := testContext(t)
	gate := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- f.Read(ctx, root, Options{}, func(g share.Getter, local bool) error {
			<-gate // the first reader is slow: the others come meanwhile
			fr, err := dag.NewFileReader(ctx, g, root)
			if err == nil {
				_, err = fr.WriteTo(io.Discard)
			}
			return err
		})
	}()
	waitFor(t, func() bool { return fn.sessions.Load() == 1 })
	type result struct {
		got   []byte
		local bool
		err   error
	}
	second := make(chan result, 1)
	go func() {
		got, local, err := cat(ctx, f.Fetcher, root, Options{Progress: func(Progress) {}})
		second <- result{got, local, err}
	}()
	have := make(chan error, 1)
	go func() { have <- f.Have(ctx, root, Options{}, nil) }()
	waitFor(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		fl := f.flights[root]
		if fl == nil {
			return false
		}
		fl.mu.Lock()
		defer fl.mu.Unlock()
		return len(fl.watchers) == 1 // the second Read's
	})
	close(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	r := <-second
	if r.err != nil || !r.local || !bytes.Equal(r.got, data) {
		t.Fatalf("second read: local %v, err %v, %d bytes", r.local, r.err, len(r.got))
	}
	if err := <-have; err != nil {
		t.Fatal(err)
	}
	if n := fn.sessions.Load(); n != 1 {
		t.Fatalf("%d sessions for one DAG, want 1", n)
	}
	if len(f.flights) != 0 {
		t.Fatalf("flights left: %v", f.flights)
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

// TestNotHere: what a fetch says when content cannot come, by kind. When
// every source has answered no, the fetch fails at once (the idle timeout
// here is an hour), and says whom it asked.
func TestNotHere(t *testing.T) {
	ctx := testContext(t)
	fn := newFakeNet()
	root, _ := addRemote(t, fn, 10<<10)
	notHere := root.String() + ": not found locally, and "
	online := func(nw *fakeNet, router bool) func(context.Context) (*Network, error) {
		return func(context.Context) (*Network, error) { return nw.network(router), nil }
	}
	peersSayNo := func(noDHT bool, silent ...peer.ID) *fakeNet {
		n := newFakeNet()
		n.connect("a", false)
		n.connect("b", false)
		for _, p := range silent {
			n.connect(p, false)
			n.silent[p] = true
		}
		n.noDHT = noDHT
		return n
	}
	// limitedPeers: a and b say no; the peers lim, connected or found
	// by the DHT, are only reachable through relays that limit data.
	limitedPeers := func(connected bool, lim ...peer.ID) *fakeNet {
		n := peersSayNo(connected)
		for _, p := range lim {
			n.limited[p] = true
			if connected {
				n.connect(p, true)
			} else {
				n.routed = append(n.routed, peer.AddrInfo{ID: p})
			}
		}
		return n
	}

	cases := []struct {
		name    string
		online  func(context.Context) (*Network, error)
		timeout time.Duration
		kind    errs.Kind
		want    string
	}{
		{"offline", func(context.Context) (*Network, error) { return nil, nil }, time.Hour, errs.NotFound, root.String() + ": not found locally"},
		{"network fails", func(context.Context) (*Network, error) { return nil, errors.New("port in use") }, time.Hour, errs.NotFound,
			notHere + "the network could not start: port in use"},
		{"no peers, no DHT", online(newFakeNet(), false), time.Hour, errs.NotFound,
			notHere + "no peer that has it was found: asked 0 connected peers, the DHT is off"},
		{"peers say no, DHT has no peers", online(peersSayNo(true), true), time.Hour, errs.NotFound,
			notHere + "no peer that has it was found: asked 2 connected peers, DHT has no peers"},
		{"peers say no, DHT finds none", online(peersSayNo(false), true), time.Hour, errs.NotFound,
			notHere + "no peer that has it was found: asked 2 connected peers, the DHT found no provider"},
		// A provider only behind a relay that limits data (no hole
		// punched) is an answer: the fetch ends at once, saying why.
		{"a connected peer behind a limited relay", online(limitedPeers(true, "lim"), true), time.Hour, errs.Unreachable,
			notHere + "peer " + peer.ID("lim").ShortString() + " is only reachable through a relay that limits data"},
		// The line names the smallest ID.
		{"the DHT finds two behind limited relays", online(limitedPeers(false, "lim1", "lim2"), true), time.Hour, errs.Unreachable,
			notHere + "peer " + peer.ID("lim1").ShortString() + " and 1 more are only reachable through a relay that limits data"},
		// A peer that does not answer is not a no: the timeout decides.
		{"a peer does not answer", online(peersSayNo(true, "mute"), true), 100 * time.Millisecond, errs.Timeout,
			notHere + "nothing arrived in time: no peer that has it was found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFetcher(t, nil)
			f.cfg.Online = tc.online
			_, _, err := cat(ctx, f.Fetcher, root, Options{Timeout: tc.timeout})
			if err == nil || err.Error() != tc.want || errs.KindOf(err) != tc.kind {
				t.Fatalf("err %v (kind %v), want %q (kind %v)", err, errs.KindOf(err), tc.want, tc.kind)
			}
			if r := errs.Reason(err); tc.kind == errs.Unreachable && r != strings.TrimPrefix(tc.want, notHere) {
				t.Fatalf("reason %q, want the part that says why", r)
			}
			err = f.Have(ctx, root, Options{Timeout: tc.timeout}, nil)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Have: err %v, want %q", err, tc.want)
			}
			g := f.Getter(ctx, Options{Timeout: tc.timeout})
			defer g.Close()
			if _, err := g.Get(ctx, root); err == nil || err.Error() != tc.want {
				t.Fatalf("Getter: err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestProvidersThatComeLater: a peer that connects during the fetch is
// asked; one that connected before and lacks the content is asked once.
// The node has just joined the network: the peers that answered no do not
// end the fetch while mDNS may still find others.
func TestProvidersThatComeLater(t *testing.T) {
	fn := newFakeNet()
	root, data := addRemote(t, fn, 50<<10)
	fn.connect("empty", false)
	nw := fn.network(false)
	nw.Since = time.Now()
	f := newTestFetcher(t, nw)
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

// TestFailedAskAskedAgain: the only peer that has the root loses the
// first ask (its stream reset); it is asked again and the fetch completes
// long before the idle timeout.
func TestFailedAskAskedAgain(t *testing.T) {
	fn := newFakeNet()
	root, data := addRemote(t, fn, 20<<10)
	fn.flaky["lossy"] = 1
	fn.connect("lossy", true)
	f := newTestFetcher(t, fn.network(false))
	got, _, err := cat(testContext(t), f.Fetcher, root, Options{Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("different bytes")
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.asked["lossy"] != 2 {
		t.Fatalf("asked %d times, want 2", fn.asked["lossy"])
	}
}

// TestCloseEndsOnDemandFetches: Close ends a request's fetch that is
// still waiting and returns once its blocks are committed.
func TestCloseEndsOnDemandFetches(t *testing.T) {
	fn := newFakeNet() // a peer that does not answer: the fetch waits
	root, _ := addRemote(t, fn, 20<<10)
	fn.silent["mute"] = true
	fn.connect("mute", false)
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
