package blockstore

import (
	"context"
	"testing"
)

// TestBatchLooksUpOnce checks that a batch alone writing the index looks
// each block up once (at Put), not again when it indexes it: with a
// million index entries each lookup that misses costs tens of µs.
func TestBatchLooksUpOnce(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{1000, 100 << 10} { // inline, then sstables
		s := openTest(t, t.TempDir(), smallFiles)
		data := make([]byte, size)
		fillRandom(data)
		b := s.NewBatch()
		const n = 40 // several sstables of 1 MiB at 100 KiB
		for i := range uint64(n) {
			if err := b.Put(ctx, fakeCID(i), data[:size-int(i)]); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		b.Close()
		if got := s.lookups.Load(); got != n {
			t.Errorf("size %d: %d lookups for %d blocks, want %d", size, got, n, n)
		}
		checkCount(t, s, n, int64(n*size-n*(n-1)/2))
		s.Close()
	}
}

// TestBatchRechecksAfterOtherWriter checks that a block indexed by
// another writer between a batch's Put and its Commit is still indexed
// once: the batch's Put-time lookup no longer holds.
func TestBatchRechecksAfterOtherWriter(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{1000, 100 << 10} {
		for _, assume := range []bool{false, true} {
			s := openTest(t, t.TempDir(), smallFiles)
			data := make([]byte, size)
			fillRandom(data)
			b := s.NewBatch()
			b.SetAssumeMissing(assume)
			const n = 30
			for i := range uint64(n) {
				if err := b.Put(ctx, fakeCID(i), data[:size]); err != nil {
					t.Fatal(err)
				}
				if i == n-5 { // another writer stores a block of b's
					if err := s.Put(ctx, fakeCID(n-6), data[:size]); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := b.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			b.Close()
			checkCount(t, s, n, int64(n*size))
			if got := checkConsistent(t, s); got != n {
				t.Errorf("size %d, assume %v: %d blocks, want %d", size, assume, got, n)
			}
			s.Close()
		}
	}
}
