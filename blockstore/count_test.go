package blockstore

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/multiformats/go-multihash"
)

// TestCount checks that Stat's block count follows every kind of write:
// single puts, small and bulk batches, blocks stored twice, deletes (of
// missing blocks and of one block named twice), and a reopen.
func TestCount(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, smallFiles)
	data := make([]byte, 300<<10)
	fillRandom(data)
	for i := range uint64(5) {
		if err := s.Put(ctx, fakeCID(i), data[:100+i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, fakeCID(0), data[:100]); err != nil { // again
		t.Fatal(err)
	}
	for _, size := range []int{1000, 100 << 10, 300 << 10} { // inline, then sstables
		b := s.NewBatch()
		for i := range uint64(20) {
			if err := b.Put(ctx, fakeCID(1000+i), data[:size-int(i)]); err != nil {
				t.Fatal(err)
			}
			if err := b.Put(ctx, fakeCID(uint64(size)*100+i), data[:size-int(i)]); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		b.Close()
		checkConsistent(t, s)
	}
	mhs := []multihash.Multihash{fakeCID(0).Hash(), fakeCID(0).Hash(), fakeCID(1001).Hash(), fakeCID(99999).Hash()}
	if n, _, err := s.Delete(ctx, mhs); err != nil || n != 2 {
		t.Fatalf("Delete: %d blocks, %v; want 2", n, err)
	}
	n := checkConsistent(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, nil)
	defer s.Close()
	if m := checkConsistent(t, s); m != n {
		t.Fatalf("%d blocks after reopening, %d before", m, n)
	}
}

// TestCountMigrates checks that a store without a count (written before
// it existed) is counted at Open.
func TestCountMigrates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	for i := range uint64(7) {
		if err := s.Put(ctx, fakeCID(i), make([]byte, 10*i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Delete(countKey, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir, nil)
	defer s.Close()
	checkCount(t, s, 7, 210)
	if _, closer, err := s.db.Get(countKey); err != nil {
		t.Fatalf("the count was not written at Open: %v", err)
	} else {
		closer.Close()
	}
}
