package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/gc"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/mocknet"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/pin"
)

// onlineNode opens a node in a fresh repository with its network on a
// loopback TCP port and LAN discovery off: for tests of the stack on real
// sockets. Tests of logic put their nodes on a memNet.
func onlineNode(t testing.TB) *Node {
	t.Helper()
	return startNode(t, NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil, nil)
}

// memNet is an in-memory network (p2p/mocknet) that a test's nodes share,
// through NetworkOptions.Transport: the whole host stack runs (TLS, yamux,
// identify, the protocols) over pipes instead of sockets.
type memNet struct {
	t   testing.TB
	net *mocknet.Network
}

func newMemNet(t testing.TB) *memNet { return &memNet{t: t, net: mocknet.New()} }

// node opens a node on the network, as onlineNode does on TCP.
func (m *memNet) node() *Node {
	m.t.Helper()
	return m.nodeConfig(NetworkOptions{}, nil)
}

func (m *memNet) nodeWith(opts NetworkOptions) *Node {
	m.t.Helper()
	return m.nodeConfig(opts, nil)
}

// nodeConfig is nodeWith with config keys set before the network
// starts. Its DHT serves, as a TCP test node's does (Routing.Mode auto
// picks server for loopback TCP addresses, client for memory ones),
// unless kv says otherwise.
func (m *memNet) nodeConfig(opts NetworkOptions, kv map[string]string) *Node {
	m.t.Helper()
	opts.ListenAddrs = []string{"/memory/0"}
	opts.Transport = m.net
	return startNode(m.t, opts, map[string]string{"Routing.Mode": `"server"`}, kv)
}

// startNode opens a node in a fresh repository with config keys set
// (Discovery.MDNS false, then defaults, then kv) and starts its network.
func startNode(t testing.TB, opts NetworkOptions, defaults, kv map[string]string) *Node {
	t.Helper()
	dir := t.TempDir()
	n, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := n.Repo.Config().Set("Discovery.MDNS", "false")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]string{defaults, kv} {
		for k, v := range m {
			if cfg, err = cfg.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := n.Repo.SaveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := n.StartNetwork(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// waitFor polls cond every few milliseconds until it holds; after d it
// fails with msg's account of what it saw.
func waitFor(t testing.TB, d time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func connect(t testing.TB, from, to *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := from.net.Host.Connect(ctx, peer.AddrInfo{ID: to.net.Host.ID(), Addrs: to.net.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// writeTree writes files (slash-separated paths under root) to disk.
func writeTree(t testing.TB, root string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func addRandom(t testing.TB, n *Node, size int64, seed byte) (cid.Cid, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{seed}).Read(data)
	c, err := n.Add(context.Background(), "f", bytes.NewReader(data), AddOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, data
}

// TestFetchFromProviders: a getter fetches a DAG that three providers
// hold, through cat, get and pin add; fetched blocks are cached unpinned.
func TestFetchFromProviders(t *testing.T) {
	mn := newMemNet(t)
	getter := mn.node()
	var providers []*Node
	for i := 0; i < 3; i++ {
		providers = append(providers, mn.node())
	}
	c, data := addRandom(t, providers[0], 20<<20+3, 1)
	for _, p := range providers[1:] {
		if _, err := p.Add(context.Background(), "f", bytes.NewReader(data), AddOptions{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range providers {
		connect(t, getter, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var out bytes.Buffer
	if _, err := getter.Cat(ctx, c, &out, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("cat over the network: different bytes")
	}
	if _, err := getter.Pins.Get(c); err == nil {
		t.Fatal("cat pinned what it fetched")
	}
	// Cached: get now works with every provider gone.
	for _, p := range providers {
		p.net.Host.Close()
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := getter.Get(ctx, c, dst, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("get from cache: different bytes")
	}
}

// TestPinAddDirectFetches: pin add --direct of content that is not here
// fetches the root block (and keeps it through gc), as the README says.
func TestPinAddDirectFetches(t *testing.T) {
	mn := newMemNet(t)
	a, b := mn.node(), mn.node()
	c, _ := addRandom(t, a, 5<<20, 4)
	connect(t, b, a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.PinAdd(ctx, c, pin.Direct, "root", FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := pin.Complete(ctx, b.local(), c, pin.Direct); err != nil {
		t.Fatalf("direct pin's block after gc: %v", err)
	}
	if st, err := b.Stat(ctx); err != nil || st.Blocks != 1 {
		t.Fatalf("after gc: %d blocks (err %v), want the root alone", st.Blocks, err)
	}
}

// TestGCDuringGet: a gc that starts while a get runs says it waits for
// that fetch, and once the get is done keeps what it fetched (unpinned:
// the next gc removes it).
func TestGCDuringGet(t *testing.T) {
	mn := newMemNet(t)
	a, b := mn.node(), mn.node()
	c, data := addRandom(t, a, 4<<20, 5)
	connect(t, b, a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &gatedWriter{gate: make(chan struct{}), started: make(chan struct{})}
	got := make(chan error, 1)
	go func() {
		_, err := b.Cat(ctx, c, out, FetchOptions{})
		got <- err
	}()
	<-out.started // the get is under way, its reader held up
	waiting := make(chan string, 1)
	gcDone := make(chan error, 1)
	go func() {
		_, err := b.GC(ctx, func(w gc.Waiting) { waiting <- w.String() })
		gcDone <- err
	}()
	if w, want := <-waiting, "waiting for 1 fetch to finish: "+c.String(); w != want {
		t.Fatalf("gc says %q, want %q", w, want)
	}
	close(out.gate)
	if err := <-got; err != nil || !bytes.Equal(out.buf.Bytes(), data) {
		t.Fatalf("cat: %v", err)
	}
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	if err := pin.Complete(ctx, b.local(), c, pin.Recursive); err != nil {
		t.Fatalf("gc removed what the get running as it started fetched: %v", err)
	}
	if _, err := b.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.Stat(ctx); st.Blocks != 0 {
		t.Fatalf("a later gc left %d blocks", st.Blocks)
	}
}

// gatedWriter holds its writer up, at its first write, until gate is
// closed.
type gatedWriter struct {
	gate, started chan struct{}
	once          sync.Once
	buf           bytes.Buffer
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started); <-w.gate })
	return w.buf.Write(p)
}

// TestConcurrentGetsFetchOnce: two gets of one DAG at once through one
// node fetch it once: the provider serves each block once. (The figures
// for 256 MiB over TCP: SHARE_MEASURE=1 go test -run
// TestConcurrentGetsFetchOnce ./node.)
func TestConcurrentGetsFetchOnce(t *testing.T) {
	size := int64(16 << 20)
	var a, b *Node
	if os.Getenv("SHARE_MEASURE") != "" {
		size = 256 << 20
		a, b = onlineNode(t), onlineNode(t)
	} else {
		mn := newMemNet(t)
		a, b = mn.node(), mn.node()
	}
	c, data := addRandom(t, a, size, 6)
	connect(t, b, a)
	blocks := 0
	dag.Walk(context.Background(), a.local(), c, dag.WalkOptions{}, func(cid.Cid) error { blocks++; return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			var out bytes.Buffer
			_, err := b.Cat(ctx, c, &out, FetchOptions{})
			if err == nil && !bytes.Equal(out.Bytes(), data) {
				err = errors.New("different bytes")
			}
			errc <- err
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	served := a.Metrics().BlocksServed.Value()
	t.Logf("two concurrent cats of %d MiB: %v; the provider served %d blocks of the DAG's %d", size>>20, time.Since(start), served, blocks)
	if served > uint64(blocks) {
		t.Fatalf("the provider served %d blocks for a DAG of %d: fetched more than once", served, blocks)
	}
}

// TestPinAddFetches: pin add on a node that lacks the content fetches it.
func TestPinAddFetches(t *testing.T) {
	mn := newMemNet(t)
	a, b := mn.node(), mn.node()
	c, _ := addRandom(t, a, 5<<20, 2)
	connect(t, b, a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last Progress
	if err := b.PinAdd(ctx, c, pin.Recursive, "remote", FetchOptions{Progress: func(p Progress) { last = p }}); err != nil {
		t.Fatal(err)
	}
	if last.Bytes < 5<<20 || last.Total < 5<<20 {
		t.Fatalf("last progress %+v: expected the fetched bytes and the DAG's size", last)
	}
	// Traffic is counted per protocol, in the net layer.
	m := b.Metrics()
	if in := m.BytesIn("blocks").Value(); in < 5<<20 {
		t.Fatalf("blocks bytes in = %d, want the 5 MiB fetched", in)
	}
	if m.BytesIn("id").Value() == 0 || m.BytesOut("blocks").Value() == 0 || m.BlocksFetched.Value() == 0 {
		t.Fatalf("identify/want bytes or fetched blocks not counted: id in %d, blocks out %d, fetched %d",
			m.BytesIn("id").Value(), m.BytesOut("blocks").Value(), m.BlocksFetched.Value())
	}
	if served := a.Metrics().BlocksServed.Value(); served == 0 {
		t.Fatal("provider counted no blocks served")
	}
	if _, err := b.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := pin.Complete(ctx, b.local(), c, pin.Recursive); err != nil {
		t.Fatalf("pinned content incomplete after gc: %v", err)
	}
}

// TestFetchNobodyHas: nobody has it, and every source says so: the get
// fails at once (its idle timeout is an hour), saying whom it asked.
func TestFetchNobodyHas(t *testing.T) {
	mn := newMemNet(t)
	a, b := mn.node(), mn.node()
	connect(t, b, a)
	c, _ := addRandom(t, mn.node(), 1000, 3) // on a third node nobody knows
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := b.Get(ctx, c, filepath.Join(t.TempDir(), "x"), GetOptions{FetchOptions: FetchOptions{Timeout: time.Hour}})
	if !errs.Is(errs.NotFound, err) || !strings.Contains(err.Error(), "no peer that has it was found: asked 1 connected peers, ") {
		t.Fatalf("error %v (kind %v), want one of kind not found that says whom it asked", err, errs.KindOf(err))
	}
}

// BenchmarkFetchCat measures cat of a file held by one provider over
// loopback TCP, both nodes in this process.
func BenchmarkFetchCat(b *testing.B) {
	const size = 256 << 20
	prov, getter := onlineNode(b), onlineNode(b)
	c, _ := addRandom(b, prov, size, 9)
	connect(b, getter, prov)
	ctx := context.Background()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := getter.Cat(ctx, c, io.Discard, FetchOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := getter.GC(ctx, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// TestResumeAfterCutOff: a get whose only provider vanishes half-way keeps
// what arrived, and the next get (from another provider) fetches only the
// rest.
func TestResumeAfterCutOff(t *testing.T) {
	mn := newMemNet(t)
	var served atomic.Int64
	var prov *Node
	prov = mn.nodeWith(NetworkOptions{ExchangeConfig: exchange.Config{OnServed: func(int) {
		if served.Add(1) == 8 { // the provider vanishes after 8 blocks
			go prov.net.Host.Close()
		}
	}}})
	getter := mn.node()
	const size = 96 << 20
	c, data := addRandom(t, prov, size, 5)
	connect(t, getter, prov)
	err := getter.Get(context.Background(), c, filepath.Join(t.TempDir(), "a"), GetOptions{FetchOptions: FetchOptions{Timeout: time.Second}})
	if err == nil {
		t.Fatal("the get succeeded although its provider vanished at 8 MiB of 96")
	}
	st, _ := getter.Stat(context.Background())
	if st.Bytes < 1<<20 || st.Bytes >= size {
		t.Fatalf("%d bytes kept after the cut, want what arrived (up to 8 MiB, some in flight at the cut)", st.Bytes)
	}
	again := mn.node()
	if c2, _ := addRandom(t, again, size, 5); !c2.Equals(c) {
		t.Fatal("same bytes, other CID")
	}
	connect(t, getter, again)
	var fetched int64 // by the session, not the writer
	dst := filepath.Join(t.TempDir(), "b")
	if err := getter.Get(context.Background(), c, dst, GetOptions{FetchOptions: FetchOptions{Progress: func(p Progress) {
		if p.Phase != "writing" {
			fetched = p.Bytes
		}
	}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("resumed get: different bytes")
	}
	if fetched > size-st.Bytes+2<<20 {
		t.Fatalf("resumed get fetched %d bytes; %d of %d were already here", fetched, st.Bytes, size)
	}
	t.Logf("cut-off get kept %d MiB; the resumed get fetched %d MiB", st.Bytes>>20, fetched>>20)
}

// TestSetConfigWhileRunning: the daemon changes its config while other
// goroutines read it (run with -race).
func TestSetConfigWhileRunning(t *testing.T) {
	mn := newMemNet(t)
	n := mn.node()
	d := &Daemon{Node: n, Host: n.net.Host}
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			n.Stat(ctx)
			n.Status(ctx)
		}
	}()
	for i := 0; i < 50; i++ {
		if err := d.SetConfig(ctx, "Datastore.StorageMax", fmt.Sprintf("%dGB", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if got := n.Repo.Config().Datastore.StorageMax; got != "50GB" {
		t.Fatalf("StorageMax = %s after the last set", got)
	}
}

// TestFetchFinishesInBackground: cat returns once its output is written,
// while the last fetched blocks are still being committed; what reads
// blocks next (get, stat) waits for that commit instead of missing them.
func TestFetchFinishesInBackground(t *testing.T) {
	mn := newMemNet(t)
	getter, prov := mn.node(), mn.node()
	c, data := addRandom(t, prov, 6<<20+5, 3)
	connect(t, getter, prov)
	gate := make(chan struct{})
	var released atomic.Bool
	getter.finishHook = func() { <-gate }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out bytes.Buffer
	if _, err := getter.Cat(ctx, c, &out, FetchOptions{}); err != nil {
		t.Fatal(err) // (a Cat that waited for the commit would time out)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("cat: different bytes")
	}

	// The provider is gone: get can only succeed from the cache, once
	// the held-back commit is done, and must not finish before it.
	prov.net.Host.Close()
	dst := filepath.Join(t.TempDir(), "out")
	type result struct {
		err   error
		after bool
	}
	got, stat := make(chan result, 1), make(chan result, 1)
	go func() {
		err := getter.Get(ctx, c, dst, GetOptions{})
		got <- result{err, released.Load()}
	}()
	go func() {
		st, err := getter.Stat(ctx)
		if err == nil && st.Blocks == 0 {
			err = fmt.Errorf("stat counts no blocks")
		}
		stat <- result{err, released.Load()}
	}()
	// Give a get or stat that does not wait the time to finish early.
	select {
	case r := <-got:
		t.Fatalf("get finished before the commit (err %v)", r.err)
	case r := <-stat:
		t.Fatalf("stat finished before the commit (err %v)", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	released.Store(true)
	close(gate)
	for _, ch := range []chan result{got, stat} {
		select {
		case r := <-ch:
			if r.err != nil || !r.after {
				t.Fatalf("after the commit: err %v, finished after it %v", r.err, r.after)
			}
		case <-ctx.Done():
			t.Fatal("get or stat still waiting after the commit")
		}
	}
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, data) {
		t.Fatal("get from the cache: different bytes")
	}
}

// TestFetchShardedDirectory: a directory big enough to be HAMT-sharded
// (6000 entries) crosses the network: get writes every file, and ls lists
// it from the cache.
func TestFetchShardedDirectory(t *testing.T) {
	mn := newMemNet(t)
	provider, getter := mn.node(), mn.node()
	src := filepath.Join(t.TempDir(), "top")
	big := filepath.Join(src, "big")
	if err := os.MkdirAll(big, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 6000
	for i := range n {
		if err := os.WriteFile(filepath.Join(big, fmt.Sprintf("f%05d", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var bigCid cid.Cid
	root, err := provider.Add(ctx, src, nil, AddOptions{Recursive: true}, func(a Added) {
		if a.Name == "top/big" {
			bigCid = a.Cid
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bigCid.Defined() {
		t.Fatal("no entry reported for top/big")
	}
	connect(t, getter, provider)
	dst := filepath.Join(t.TempDir(), "out")
	if err := getter.Get(ctx, root, dst, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(filepath.Join(dst, "big"))
	if err != nil || len(des) != n {
		t.Fatalf("got %d files (%v), want %d", len(des), err, n)
	}
	for _, i := range []int{0, 2999, n - 1} {
		b, err := os.ReadFile(filepath.Join(dst, "big", fmt.Sprintf("f%05d", i)))
		if err != nil || string(b) != fmt.Sprint(i) {
			t.Fatalf("file %d: %q %v", i, b, err)
		}
	}
	ents, err := getter.Ls(ctx, bigCid, FetchOptions{})
	if err != nil || len(ents) != n || ents[0].Name != "f00000" || ents[n-1].Name != fmt.Sprintf("f%05d", n-1) || ents[0].Type != "file" {
		t.Fatalf("ls: %d entries, %v", len(ents), err)
	}
}

// TestFetchSmallFilesTree: a tree of tiny files (each block smaller than
// a frame reader's scratch buffer), the same file under several names,
// and a multi-chunk file twice, crosses the network through get: every
// file arrives with its bytes. Small blocks once shared the reader's
// scratch buffer with the next frame, and a leaf read twice after the
// session had finished was "not found".
func TestFetchSmallFilesTree(t *testing.T) {
	mn := newMemNet(t)
	provider, getter := mn.node(), mn.node()
	src := filepath.Join(t.TempDir(), "tree")
	files := map[string][]byte{}
	big := make([]byte, 3<<20+17)
	rand.NewChaCha8([32]byte{7}).Read(big)
	for i := range 40 {
		files[fmt.Sprintf("d%d/small%02d", i%3, i)] = []byte(fmt.Sprintf("file %d\n", i))
	}
	for _, name := range []string{"same1", "d0/same2", "d1/same3"} {
		files[name] = []byte("identical content\n")
	}
	files["a"] = []byte("a")
	files["empty"] = nil
	files["big1"], files["d2/big2"] = big, big
	writeTree(t, src, files)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root, err := provider.Add(ctx, src, nil, AddOptions{Recursive: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	connect(t, getter, provider)
	dst := filepath.Join(t.TempDir(), "out")
	if err := getter.Get(ctx, root, dst, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes (%v), want %d", name, len(got), err, len(want))
		}
	}
}

// TestCorruptProviderTCP: over real TCP, one of two providers serves
// corrupt leaves: the get still writes the right bytes (from the honest
// one), and the getter disconnects the corrupt provider.
func TestCorruptProviderTCP(t *testing.T) {
	good, bad, getter := onlineNode(t), onlineNode(t), onlineNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{9}).Read(data)
	opts := AddOptions{Chunker: "size-65536"}
	root, err := good.Add(ctx, "f", bytes.NewReader(data), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Add(ctx, "f", bytes.NewReader(data), opts, nil); err != nil {
		t.Fatal(err)
	}
	// Every leaf of bad's copy is replaced with a flipped-bit version.
	var leaves []cid.Cid
	if err := dag.Walk(ctx, bad.Blocks, root, dag.WalkOptions{}, func(c cid.Cid) error {
		if c.Type() == dag.Raw {
			leaves = append(leaves, c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range leaves {
		blk, err := bad.Blocks.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		b := bytes.Clone(blk.Data)
		b[len(b)/2] ^= 1
		if _, _, err := bad.Blocks.Delete(ctx, []multihash.Multihash{c.Hash()}); err != nil {
			t.Fatal(err)
		}
		if err := bad.Blocks.Put(ctx, c, b); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, getter, bad)
	connect(t, getter, good)
	var out bytes.Buffer
	if _, err := getter.Cat(ctx, root, &out, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("cat with a corrupt provider: wrong bytes")
	}
	waitFor(t, 10*time.Second, func() bool { return !getter.net.Host.Connected(bad.net.Host.ID()) },
		func() string { return "the corrupt provider is still connected" })
	if !getter.net.Host.Connected(good.net.Host.ID()) {
		t.Fatal("the honest provider was disconnected")
	}
}

// TestBootstrapRedial: a node keeps its bootstrap peer: after the peer
// drops the connection, the node dials it again (backoff starts at 1 s).
func TestBootstrapRedial(t *testing.T) {
	mn := newMemNet(t)
	boot := mn.node()
	ai := peer.AddrInfo{ID: boot.net.Host.ID(), Addrs: boot.net.Host.Addrs()}
	n := mn.nodeConfig(NetworkOptions{}, map[string]string{
		"Routing.Mode": `"off"`,
		"Bootstrap":    fmt.Sprintf(`["%s/p2p/%s"]`, ai.Addrs[0], ai.ID),
	})
	waitConnected := func(what string) {
		t.Helper()
		// Both ends: the bootstrap peer registers the inbound connection
		// a little after the dialler, and a ClosePeer before that closes
		// nothing.
		waitFor(t, 10*time.Second, func() bool {
			return n.net.Host.Connected(ai.ID) && boot.net.Host.Connected(n.net.Host.ID())
		}, func() string { return what + ": not connected to the bootstrap peer" })
	}
	waitConnected("at start")
	for round := range 2 {
		// Wait for these connections to end, not for "not connected": the
		// bootstrap peer's own DHT may dial back at once.
		conns := n.net.Host.ConnsToPeer(ai.ID)
		boot.net.Host.ClosePeer(n.net.Host.ID())
		waitFor(t, 10*time.Second, func() bool {
			return !slices.ContainsFunc(conns, func(c *p2p.Conn) bool { return !c.IsClosed() })
		}, func() string { return "the bootstrap peer's close never arrived" })
		// The redial is ours: an outbound connection, whoever else dials.
		what := fmt.Sprintf("after drop %d", round+1)
		waitFor(t, 10*time.Second, func() bool {
			return slices.ContainsFunc(n.net.Host.ConnsToPeer(ai.ID), func(c *p2p.Conn) bool {
				return c.Direction() == p2p.Outbound && !c.IsClosed()
			})
		}, func() string { return what + ": the bootstrap peer was not redialled" })
		waitConnected(what)
	}
}

// TestLsFromNetwork: ls of a directory that is not here reads it from a
// provider, and keeps its blocks cached.
func TestLsFromNetwork(t *testing.T) {
	mn := newMemNet(t)
	provider, getter := mn.node(), mn.node()
	src := filepath.Join(t.TempDir(), "d")
	writeTree(t, src, map[string][]byte{"f0": make([]byte, 5), "sub/big": make([]byte, 3<<20)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := provider.Add(ctx, src, nil, AddOptions{Recursive: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := provider.Ls(ctx, root, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	connect(t, getter, provider)
	got, err := getter.Ls(ctx, root, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ls from the network: %v, want %v", got, want)
	}
	if ok, _ := getter.Blocks.Has(ctx, root); !ok {
		t.Fatal("the directory's block was not cached")
	}
}

// TestLiveMetrics: the gauges and counters that TestPinAddFetches does not
// look at follow the node's life: peers connected, DHT requests sent, the
// store's size, and gc runs with what they freed.
func TestLiveMetrics(t *testing.T) {
	mn := newMemNet(t)
	a, b := mn.node(), mn.node()
	ma, mb := a.Metrics(), b.Metrics()
	if ma.Peers.Value() != 0 || mb.Peers.Value() != 0 {
		t.Fatalf("peers before any connection: %d, %d", ma.Peers.Value(), mb.Peers.Value())
	}
	c, data := addRandom(t, a, 3<<20, 7)
	connect(t, b, a)
	waitPeers := func(what string, want int64) {
		t.Helper()
		waitFor(t, 10*time.Second, func() bool { return ma.Peers.Value() == want && mb.Peers.Value() == want },
			func() string {
				return fmt.Sprintf("peers %s: %d, %d, want %d", what, ma.Peers.Value(), mb.Peers.Value(), want)
			})
	}
	waitPeers("after connecting", 1)

	if b.net.DHT == nil {
		t.Fatal("the test node has no DHT")
	}
	pings := mb.DHTRequests.With("PING").Value()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.net.DHT.Ping(ctx, peer.AddrInfo{ID: a.net.Host.ID(), Addrs: a.net.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if got := mb.DHTRequests.With("PING").Value(); got != pings+1 {
		t.Fatalf("PING requests %d -> %d, want one more", pings, got)
	}

	if mb.StoreBytes.Value() != 0 || mb.StoreBlocks.Value() != 0 {
		t.Fatalf("an empty store: %d bytes, %d blocks", mb.StoreBytes.Value(), mb.StoreBlocks.Value())
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := b.Get(ctx, c, dst, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := b.local().Store().Stat(ctx) // after the fetch's background commit
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes < int64(len(data)) {
		t.Fatalf("store after a 3 MiB get: %d bytes", st.Bytes)
	}
	// The store gauges read a figure refreshed at most once a second.
	waitStore := func(what string, bytes int64, blocks int) {
		t.Helper()
		waitFor(t, 10*time.Second, func() bool {
			return mb.StoreBytes.Value() == bytes && mb.StoreBlocks.Value() == int64(blocks)
		}, func() string {
			return fmt.Sprintf("%s: metrics say %d bytes %d blocks, want %d and %d", what, mb.StoreBytes.Value(), mb.StoreBlocks.Value(), bytes, blocks)
		})
	}
	waitStore("after a 3 MiB get", st.Bytes, st.Blocks)
	res, err := b.GC(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mb.GCRuns.Value() != 1 || mb.GCFreedBlocks.Value() != uint64(st.Blocks) || mb.GCFreedBytes.Value() != uint64(st.Bytes) || res.Blocks != int(st.Blocks) {
		t.Fatalf("after gc of the unpinned fetch: runs %d, freed %d blocks %d bytes (gc said %d), want 1, %d, %d",
			mb.GCRuns.Value(), mb.GCFreedBlocks.Value(), mb.GCFreedBytes.Value(), res.Blocks, st.Blocks, st.Bytes)
	}
	waitStore("after gc", 0, 0)

	a.net.Host.Close() // a goes away for good (a closed peer's DHT could dial back)
	waitPeers("after a left", 0)
}

// TestRoutingAlphaConfig: Routing.Alpha reaches the DHT.
func TestRoutingAlphaConfig(t *testing.T) {
	mn := newMemNet(t)
	n := mn.nodeConfig(NetworkOptions{}, map[string]string{"Routing.Alpha": "3"})
	if n.net.DHT == nil || n.net.DHT.Alpha() != 3 {
		t.Fatalf("DHT alpha: %v", n.net.DHT)
	}
}

// TestSpawnAfterClose: once Close has begun, the network starts no
// goroutine (a wg.Add then would race Close's Wait, and the goroutine
// would outlive the network).
func TestSpawnAfterClose(t *testing.T) {
	nw := newMemNet(t).node().net
	ran := make(chan struct{}, 1)
	nw.spawn(func() { ran <- struct{}{} })
	<-ran
	if err := nw.Close(); err != nil {
		t.Fatal(err)
	}
	nw.spawn(func() { ran <- struct{}{} })
	nw.wg.Wait()
	select {
	case <-ran:
		t.Fatal("a goroutine started after Close")
	default:
	}
}
