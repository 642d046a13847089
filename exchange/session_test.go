package exchange

import (
	"context"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
)

// TestStaleRequestForReader: a block a reader waits for, stuck at the
// provider it was asked of, is asked of another provider once it is stale
// (500 ms), long before ReadTimeout would give up on the first. The other
// provider has only that block: it says DONT_HAVE for the rest, so
// nothing is left to it but the stale request (no endgame).
func TestStaleRequestForReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, src, data := makeDAG(t, 640<<10, 64<<10, 23)
		leaf := allCIDs(t, src, root)[1]
		n := newMemNet()
		held := holdBlocks(src, leaf)
		stuck := newTestPeer(t, n, "stuck", held, linkOpts{}, Config{})
		t.Cleanup(held.Release) // before the exchange closes
		only := dag.NewMemStore()
		b, _ := src.Get(context.Background(), leaf)
		only.Set(leaf, b.Data)
		var served atomic.Int64
		other := newTestPeer(t, n, "other", only, linkOpts{}, Config{OnServed: func(int) { served.Add(1) }})
		client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{MinWindow: 1, MaxWindow: 1})

		// Stored as well, as a fetch does: checkFile reads the first leaf
		// again, which a session that has ended (the rest came at once)
		// no longer holds.
		out := dag.NewMemStore()
		start := time.Now()
		s := client.e.NewSession(testContext(t, time.Minute), root, SessionOptions{Stream: true, Local: out, Putter: out, Providers: providerIDs(stuck)})
		synctest.Wait() // stuck has the root sent and the first leaf held
		if held.peakWaiting() != 1 {
			t.Fatal("the first leaf was not asked of the stuck provider")
		}
		s.AddProviders(other.h.id)
		ctx := testContext(t, time.Minute)
		if _, err := s.Get(ctx, root); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, leaf); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 500*time.Millisecond || took > client.e.cfg.ReadTimeout/2 {
			t.Fatalf("the reader had its block after %v: not a stale request's", took)
		}
		if got := served.Load(); got != 1 {
			t.Fatalf("the other provider served %d blocks, want the stale one", got)
		}
		held.Release() // the stuck provider serves the rest
		checkFile(t, s, root, data)
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
	})
}

// makePBLeafDAG builds a file as kubo does with --raw-leaves=false: its
// leaves are dag-pb UnixFS File nodes holding the data, under one root.
func makePBLeafDAG(t testing.TB, size, chunk int, seed uint64) (cid.Cid, *dag.MemStore, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	st := dag.NewMemStore()
	rootFS := dag.UnixFS{Type: dag.TypeFile, FileSize: uint64(size), HasFileSize: true}
	var root dag.PBNode
	for off := 0; off < size; off += chunk {
		part := data[off:min(off+chunk, size)]
		fs := dag.UnixFS{Type: dag.TypeFile, Data: part, FileSize: uint64(len(part)), HasFileSize: true}
		leaf := (&dag.PBNode{Data: fs.Marshal()}).Marshal()
		c := dag.Sum(dag.DagPB, leaf)
		st.Set(c, leaf)
		root.Links = append(root.Links, dag.PBLink{Hash: c, Tsize: uint64(len(leaf))})
		rootFS.BlockSizes = append(rootFS.BlockSizes, uint64(len(part)))
	}
	root.Data = rootFS.Marshal()
	b := root.Marshal()
	c := dag.Sum(dag.DagPB, b)
	st.Set(c, b)
	return c, st, data
}

// TestStreamPBLeaves: a streaming session hands kubo's dag-pb leaves to
// its reader once, as it does raw leaves, instead of keeping them for
// other readers as it keeps inner nodes: memory stays bounded.
func TestStreamPBLeaves(t *testing.T) {
	root, src, data := makePBLeafDAG(t, 4<<20, 256<<10, 31)
	n := newMemNet()
	prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
	client := newTestPeer(t, n, "client", dag.NewMemStore(), linkOpts{}, Config{})
	s := client.e.NewSession(testContext(t, 20*time.Second), root, SessionOptions{Stream: true, Providers: providerIDs(prov)})
	checkFile(t, s, root, data)
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	held := len(s.held)
	s.mu.Unlock()
	if held != 1 { // the root
		t.Fatalf("session holds %d blocks after the reader read them all, want 1 (the root)", held)
	}
}

// TestServeBatchesSmallBlocks: a provider asked for many small blocks at
// once writes their BLOCK frames in a few stream writes, not one each
// (each write is a stream frame, a TLS record and a system call), and a
// lone request is still answered at once.
func TestServeBatchesSmallBlocks(t *testing.T) {
	root, src, _ := makeDAG(t, 512<<10, 1<<10, 7)
	cids := allCIDs(t, src, root)
	var want []byte
	for _, c := range cids {
		want = appendMessage(want, msgWantBlock, c)
	}
	n := newMemNet()
	prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
	// Loads take a while, as from a real store: the writer is faster
	// than the loader and would find nothing more to write after each.
	// (A spin: a sleep of microseconds takes a millisecond.)
	prov.store.hook = func(int64) {
		for t0 := time.Now(); time.Since(t0) < 20*time.Microsecond; {
		}
	}
	client := n.addHost("client", linkOpts{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := client.NewStream(ctx, prov.h.id, testProto)
	if err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(st)
	// A lone request: its answer comes although nothing follows it.
	if _, err := st.Write(appendMessage(nil, msgWantBlock, root)); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if m, buf, err := fr.next(); err != nil || m.typ != msgBlock || m.cid != root {
		t.Fatalf("answer to a lone WANT: %v %v, %v", m.typ, m.cid, err)
	} else {
		putBuf(buf)
	}
	before := prov.h.writes.Load()
	go func() {
		st.Write(want)
		st.CloseWrite()
	}()
	got := 0
	for {
		_, buf, err := fr.next()
		putBuf(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got++
	}
	if got != len(cids) {
		t.Fatalf("%d answers to %d WANTs", got, len(cids))
	}
	if w := prov.h.writes.Load() - before; w > int64(len(cids)/8) {
		t.Fatalf("%d blocks of 1 KiB written in %d stream writes, want at most %d", len(cids), w, len(cids)/8)
	}
}

// TestGetRootWithoutStream: a session that stores blocks for no reader
// (the fetcher's pin) still answers Get of its root, which the fetcher
// reads for the DAG's size while its Putter (an uncommitted batch) is
// not yet visible in Local, and a leaf Get waits for. Each block is
// fetched once: Get used to find the root done and not local and fetch
// it again, over and over until the session ended, and then fail.
func TestGetRootWithoutStream(t *testing.T) {
	root, src, _ := makeDAG(t, 256<<10, 16<<10, 7)
	n := newMemNet()
	prov := newTestPeer(t, n, "prov", src, linkOpts{}, Config{})
	local, batch := dag.NewMemStore(), dag.NewMemStore() // batch: not visible in local
	client := newTestPeer(t, n, "client", local, linkOpts{}, Config{})
	ctx := testContext(t, 20*time.Second)
	s := client.e.NewSession(ctx, root, SessionOptions{Local: local, Putter: batch, Providers: providerIDs(prov)})
	b, err := s.Get(ctx, root)
	if err != nil {
		t.Fatalf("Get(root): %v", err)
	}
	b.Release()
	leaf := allCIDs(t, src, root)[src.Len()-1]
	if b, err := s.Get(ctx, leaf); err != nil {
		t.Fatalf("Get(a leaf): %v", err)
	} else {
		b.Release()
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Get(ctx, root); err != nil {
		t.Errorf("Get(root) after the session: %v", err)
	} else {
		b.Release()
	}
	p := s.Progress()
	if got := prov.store.gets.Load(); got != int64(src.Len()) || p.Blocks != src.Len() || p.Duplicates != 0 {
		t.Errorf("provider served %d blocks, session counts %d (%d duplicates); the DAG has %d", got, p.Blocks, p.Duplicates, src.Len())
	}
	if batch.Len() != src.Len() {
		t.Errorf("%d blocks stored, want %d", batch.Len(), src.Len())
	}
}
