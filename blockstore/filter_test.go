package blockstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// buildFilter builds s's miss filter and puts it in use, as enough
// missing lookups would in the background, or waits for the build that
// they started.
func buildFilter(tb testing.TB, s *Store) {
	tb.Helper()
	if s.filter.begin() {
		s.runFilter()
	} else {
		waitFilterBuilds(s)
	}
	if s.filter.cur.Load() == nil {
		tb.Fatal("no filter in use after a build")
	}
}

// waitFilterBuilds waits for the builds started in the background; no
// lookup or write may start one meanwhile.
func waitFilterBuilds(s *Store) { s.filter.wg.Wait() }

// TestFilter checks that a filter finds every key added and that, full
// to capacity, it says "maybe" of few others.
func TestFilter(t *testing.T) {
	const n = 100_000
	f := newFilter(n)
	for i := range uint64(n) {
		if full := f.add(fakeCID(i).Hash()); full {
			t.Fatalf("full after %d keys of %d", i+1, n)
		}
	}
	for i := range uint64(n) {
		if !f.mayHave(fakeCID(i).Hash()) {
			t.Fatalf("key %d added, not found", i)
		}
	}
	fp := 0
	for i := range uint64(n) {
		if f.mayHave(fakeCID(n + i).Hash()) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.005 {
		t.Errorf("false positives: %.4f, want <= 0.005", rate)
	}
	if !f.add(fakeCID(n).Hash()) {
		t.Error("not full after capacity+1 keys")
	}
}

// TestFilterBuildWithWriters builds the filter while writers add blocks
// (one by one and through Batches) and checks that every block stored is
// found afterwards, and that a block removed then stored again is too:
// a filter that forgets a key would make the store lose a block.
func TestFilterBuildWithWriters(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), smallFiles)
	defer s.Close()
	addBlocks(t, s, 0, 2000, 100)
	const writers, each = 3, 600
	done := make(chan error, writers)
	for w := range uint64(writers) {
		go func() {
			first := 10_000 * (w + 1)
			if w == 0 {
				for i := first; i < first+each; i++ {
					if err := s.Put(ctx, fakeCID(i), []byte{byte(i)}); err != nil {
						done <- err
						return
					}
				}
				done <- nil
				return
			}
			done <- putEach(ctx, s, first, each, 2000) // sstables of smallFiles
		}()
	}
	s.filter.scanning = func() { // blocks only the new filter's writers see
		if err := putEach(ctx, s, 50_000, 300, 2000); err != nil {
			t.Error(err)
		}
		for i := uint64(60_000); i < 60_010; i++ {
			if err := s.Put(ctx, fakeCID(i), []byte{byte(i)}); err != nil {
				t.Error(err)
			}
		}
	}
	buildFilter(t, s)
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	checkAllFound(t, s)
	if _, _, err := s.Delete(ctx, []multihash.Multihash{fakeCID(5).Hash()}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, fakeCID(5)); ok {
		t.Fatal("deleted block 5 still found")
	}
	if err := s.Put(ctx, fakeCID(5), []byte{5}); err != nil {
		t.Fatal(err)
	}
	checkAllFound(t, s)
}

// putEach stores blocks first to first+n of size bytes through Batches of
// 100 blocks.
func putEach(ctx context.Context, s *Store, first, n uint64, size int) error {
	data := make([]byte, size)
	b := s.NewBatch()
	defer b.Close()
	for i := first; i < first+n; i++ {
		data[0], data[1] = byte(i), byte(i>>8)
		if err := b.Put(ctx, fakeCID(i), data); err != nil {
			return err
		}
		if i%100 == 99 {
			if err := b.Commit(ctx); err != nil {
				return err
			}
		}
	}
	return b.Commit(ctx)
}

// checkAllFound checks that Has, Size and Get find every block the index
// holds, and that the count agrees.
func checkAllFound(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	n := 0
	err := s.ForEach(ctx, func(mh multihash.Multihash, _ int) error {
		n++
		c := cid.NewCidV1(cid.Raw, mh)
		if ok, err := s.Has(ctx, c); err != nil || !ok {
			return fmt.Errorf("Has(%s) = %v, %v", c, ok, err)
		}
		if _, err := s.Size(ctx, c); err != nil {
			return err
		}
		_, release, err := s.BorrowParts(ctx, c)
		if err != nil {
			return err
		}
		release()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stat(ctx); st.Blocks != n {
		t.Errorf("count %d, index %d", st.Blocks, n)
	}
}

// TestFilterStartsAfterMisses checks that enough lookups of missing
// blocks build the filter, that it answers them after, and that one
// over its capacity is rebuilt bigger.
func TestFilterStartsAfterMisses(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), nil)
	defer s.Close()
	addBlocks(t, s, 0, 100, 100)
	for i := range uint64(filterMisses) {
		if ok, err := s.Has(ctx, fakeCID(1<<40+i)); err != nil || ok {
			t.Fatalf("Has = %v, %v", ok, err)
		}
	}
	waitFilterBuilds(s)
	f := s.filter.cur.Load()
	if f == nil {
		t.Fatal("no filter after many misses")
	}
	checkAllFound(t, s)

	small := newFilter(10)
	if err := s.scanKeys(ctx, nil, func(mh []byte) { small.add(mh) }); err != nil {
		t.Fatal(err)
	}
	s.filter.cur.Store(small)
	addBlocks(t, s, 1000, 1, 100) // over capacity: starts a build
	waitFilterBuilds(s)
	if f := s.filter.cur.Load(); f == small || f.capacity < filterCapacity(101) {
		t.Fatalf("filter not rebuilt bigger: capacity %d", f.capacity)
	}
	checkAllFound(t, s)
}

// TestFilterClose checks that Close ends a build under way.
func TestFilterClose(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	addBlocks(t, s, 0, 1000, 100)
	s.startFilter()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.startFilter() // closed: starts nothing
	if s.filter.running {
		t.Error("a build started after Close")
	}
}

// TestFilterTombstones checks that the filter answers "no" for blocks
// deleted since it was built (without asking Pebble), "maybe" again once
// they are stored again, and that a build keeps the tombstones of the
// blocks deleted while it scans and drops the others.
func TestFilterTombstones(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), nil)
	defer s.Close()
	buildFilter(t, s)
	const n = 1000
	addBlocks(t, s, 0, n, 100)
	del := func(first, count uint64) {
		mhs := make([]multihash.Multihash, count)
		for i := range mhs {
			mhs[i] = fakeCID(first + uint64(i)).Hash()
		}
		if got, _, err := s.Delete(ctx, mhs); err != nil || got != int(count) {
			t.Fatalf("Delete = %d, %v", got, err)
		}
	}
	del(0, 500)
	for i := range uint64(500) {
		if s.mayHave(fakeCID(i).Hash()) {
			t.Fatalf("deleted block %d: the filter says maybe", i)
		}
	}
	addBlocks(t, s, 0, 100, 100) // stored again
	checkAllFound(t, s)
	if got := s.filter.tombN.Load(); got != 400 {
		t.Fatalf("%d tombstones, want 400", got)
	}
	s.filter.scanning = func() { del(900, 10) } // after the scan's snapshot
	buildFilter(t, s)
	s.filter.scanning = nil
	if got := s.filter.tombN.Load(); got != 10 {
		t.Fatalf("after a build: %d tombstones, want the 10 deleted during its scan", got)
	}
	for i := uint64(900); i < 910; i++ {
		if s.mayHave(fakeCID(i).Hash()) {
			t.Fatalf("block %d deleted during the build: the filter says maybe", i)
		}
	}
	checkAllFound(t, s)
	if st, _ := s.Stat(ctx); st.Blocks != n-410 {
		t.Errorf("%d blocks, want %d", st.Blocks, n-410)
	}
}
