package gc

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/pin"
)

// TestCollectExactly builds DAGs that share blocks, pins some, and checks
// that gc removes exactly the blocks no pin reaches.
func TestCollectExactly(t *testing.T) {
	bs, err := blockstore.Open(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	ctx := context.Background()
	pins := pin.New(bs.Keyspace('p'))
	spec, _ := chunker.FixedSize(4096)

	shared := make([]byte, 4*4096)
	rand.Read(shared)
	own := func() []byte { b := make([]byte, 3*4096); rand.Read(b); return b }
	add := func(data []byte) cid.Cid {
		b := bs.NewBatch()
		defer b.Close()
		c, _, err := dag.ImportFile(ctx, bytes.NewReader(data), b, dag.ImportOptions{Chunker: spec})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	kept := add(append(bytes.Clone(shared), own()...))    // pinned recursively
	dropped := add(append(bytes.Clone(shared), own()...)) // unpinned, shares 4 leaves
	direct := add(append(own(), own()...))                // pinned directly: only its root stays
	if err := pins.Add(ctx, kept, pin.Recursive, ""); err != nil {
		t.Fatal(err)
	}
	if err := pins.Add(ctx, direct, pin.Direct, ""); err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{}
	mark := func(root cid.Cid) {
		dag.Walk(ctx, bs, root, dag.WalkOptions{}, func(c cid.Cid) error { want[string(c.Hash())] = true; return nil })
	}
	mark(kept)
	want[string(direct.Hash())] = true
	var before int
	bs.ForEach(ctx, func(multihash.Multihash, int) error { before++; return nil })

	var lock Lock
	res, err := Collect(ctx, &lock, bs, pins)
	if err != nil {
		t.Fatal(err)
	}
	var after []string
	bs.ForEach(ctx, func(mh multihash.Multihash, _ int) error { after = append(after, string(mh)); return nil })
	if len(after) != len(want) {
		t.Fatalf("%d blocks left, want %d", len(after), len(want))
	}
	for _, mh := range after {
		if !want[mh] {
			t.Fatalf("gc kept an unreachable block")
		}
	}
	if res.Blocks != before-len(want) || res.Bytes <= 0 {
		t.Fatalf("Result = %+v, want %d blocks", res, before-len(want))
	}
	if ok, _ := bs.Has(ctx, dropped); ok {
		t.Fatal("unpinned root survived")
	}
	// A second run removes nothing.
	if res, err := Collect(ctx, &lock, bs, pins); err != nil || res.Blocks != 0 {
		t.Fatalf("second gc = %+v, %v", res, err)
	}
}

// TestCollectDuringFetches: a collection that starts while fetches run
// says what it waits for, waits, and then keeps what is stored of their
// DAGs (a fetch that starts while it waits too, and the stored part of a
// DAG fetched only in part), removing the rest.
func TestCollectDuringFetches(t *testing.T) {
	bs, err := blockstore.Open(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	ctx := context.Background()
	pins := pin.New(bs.Keyspace('p'))
	spec, _ := chunker.FixedSize(4096)
	add := func() cid.Cid {
		data := make([]byte, 5*4096)
		rand.Read(data)
		b := bs.NewBatch()
		defer b.Close()
		c, _, err := dag.ImportFile(ctx, bytes.NewReader(data), b, dag.ImportOptions{Chunker: spec})
		if err != nil || b.Commit(ctx) != nil {
			t.Fatal(err)
		}
		return c
	}
	first, second, other := add(), add(), add()
	// Of second, only the root and one leaf have come so far.
	var leaves []multihash.Multihash
	dag.Walk(ctx, bs, second, dag.WalkOptions{}, func(c cid.Cid) error {
		if c != second {
			leaves = append(leaves, c.Hash())
		}
		return nil
	})
	if _, _, err := bs.Delete(ctx, leaves[1:]); err != nil {
		t.Fatal(err)
	}

	var lock Lock
	unlock := lock.Writer()
	done := lock.Fetching(first)
	waiting := make(chan Waiting, 1)
	res := make(chan error, 1)
	go func() {
		_, err := Run(ctx, &lock, bs, pins, Options{Waiting: func(w Waiting) { waiting <- w }})
		res <- err
	}()
	w := <-waiting
	if got, want := w.String(), "waiting for 1 fetch to finish: "+first.String(); got != want {
		t.Fatalf("waiting says %q, want %q", got, want)
	}
	// A fetch that had its hold already and begins now (an on-demand
	// getter's next DAG) is kept too.
	doneSecond := lock.Fetching(second)
	done()
	doneSecond()
	unlock()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	for _, c := range []cid.Cid{first, second} {
		ok, err := bs.Has(ctx, c)
		if err != nil || !ok {
			t.Fatalf("root %s of a fetch was removed", c)
		}
	}
	if err := dag.Walk(ctx, bs, first, dag.WalkOptions{CheckLeaves: true}, func(cid.Cid) error { return nil }); err != nil {
		t.Fatalf("fetched DAG incomplete after gc: %v", err)
	}
	if ok, _ := bs.Has(ctx, cid.NewCidV1(cid.Raw, leaves[0])); !ok {
		t.Fatal("the stored leaf of a partial fetch was removed")
	}
	if ok, _ := bs.Has(ctx, other); ok {
		t.Fatal("a DAG no fetch and no pin holds survived")
	}
	if len(lock.Fetches()) != 0 {
		t.Fatalf("fetches still recorded: %v", lock.Fetches())
	}
	// The next collection keeps nothing of them.
	if _, err := Collect(ctx, &lock, bs, pins); err != nil {
		t.Fatal(err)
	}
	if ok, _ := bs.Has(ctx, first); ok {
		t.Fatal("a later gc kept an ended fetch's blocks")
	}
}

// TestCollectWaitEndsWithContext: a collection waiting for writers gives
// up when its context ends, and the lock stays usable.
func TestCollectWaitEndsWithContext(t *testing.T) {
	var lock Lock
	unlock := lock.Writer()
	ctx, cancel := context.WithCancel(context.Background())
	_, release, err := lock.collect(ctx, func(Waiting) { cancel() })
	if err == nil || release != nil {
		t.Fatalf("collect: %v, want the context's error", err)
	}
	unlock()
	lock.Collector()()
	lock.Writer()()
}

// scanCounter is a store that counts its scans and deletes.
type scanCounter struct {
	*blockstore.Store
	scans, deletes int
}

func (s *scanCounter) Scan(ctx context.Context, fn func(mh []byte, size int) error) error {
	s.scans++
	return s.Store.Scan(ctx, fn)
}

func (s *scanCounter) Delete(ctx context.Context, mhs []multihash.Multihash) (int, int64, error) {
	s.deletes++
	return s.Store.Delete(ctx, mhs)
}

// TestCollectNothingToFree checks that a collection that finds every
// stored block live scans the store once and deletes nothing, and that
// one with as many live blocks as stored ones, but not the same (a pin
// of a block that is not stored), still frees the dead one.
func TestCollectNothingToFree(t *testing.T) {
	bs, err := blockstore.Open(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	ctx := context.Background()
	pins := pin.New(bs.Keyspace('p'))
	spec, _ := chunker.FixedSize(1024)
	data := make([]byte, 8<<10)
	rand.Read(data)
	root, _, err := dag.ImportFile(ctx, bytes.NewReader(data), bs, dag.ImportOptions{Chunker: spec})
	if err != nil {
		t.Fatal(err)
	}
	if err := pins.Add(ctx, root, pin.Recursive, ""); err != nil {
		t.Fatal(err)
	}
	store := &scanCounter{Store: bs}
	var lock Lock
	if res, err := Collect(ctx, &lock, store, pins); err != nil || res.Blocks != 0 {
		t.Fatalf("Collect = %+v, %v", res, err)
	}
	if store.scans != 1 || store.deletes != 0 {
		t.Errorf("nothing to free: %d scans, %d deletes; want 1, 0", store.scans, store.deletes)
	}

	missing := dag.Sum(dag.Raw, []byte("not stored"))
	if err := pins.Add(ctx, missing, pin.Direct, ""); err != nil {
		t.Fatal(err)
	}
	dead := dag.Sum(dag.Raw, []byte("dead"))
	if err := bs.Put(ctx, dead, []byte("dead")); err != nil {
		t.Fatal(err)
	}
	res, err := Collect(ctx, &lock, store, pins)
	if err != nil || res.Blocks != 1 {
		t.Fatalf("Collect = %+v, %v; want 1 block freed", res, err)
	}
	if ok, _ := bs.Has(ctx, dead); ok {
		t.Error("the dead block is still stored")
	}
}

// TestCollectManyPins collects a store with more pins than parallelLevel
// (the mark reads that level on two goroutines), a DAG of two levels
// among them: it removes exactly the files that are not pinned.
func TestCollectManyPins(t *testing.T) {
	bs, err := blockstore.Open(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	ctx := context.Background()
	pins := pin.New(bs.Keyspace('p'))
	spec, _ := chunker.FixedSize(256)
	b := bs.NewBatch()
	defer b.Close()
	var list []pin.Pin
	var dead []cid.Cid
	for i := range parallelLevel + 300 {
		data := make([]byte, 700)
		if i == 0 {
			data = make([]byte, 256*200) // 200 leaves: two levels of nodes
		}
		rand.Read(data)
		c, _, err := dag.ImportFile(ctx, bytes.NewReader(data), b, dag.ImportOptions{Chunker: spec})
		if err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 {
			dead = append(dead, c)
			continue
		}
		list = append(list, pin.Pin{Cid: c, Mode: pin.Recursive})
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pins.AddMany(ctx, list); err != nil {
		t.Fatal(err)
	}
	var lock Lock
	res, err := Collect(ctx, &lock, bs, pins)
	if err != nil || res.Blocks != 4*len(dead) {
		t.Fatalf("Collect = %+v, %v; want %d blocks freed", res, err, 4*len(dead))
	}
	for _, p := range list {
		if err := pin.Complete(ctx, bs, p.Cid, pin.Recursive); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range dead {
		if ok, _ := bs.Has(ctx, c); ok {
			t.Fatalf("unpinned %s still stored", c)
		}
	}
}
