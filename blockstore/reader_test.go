package blockstore

import (
	"bytes"
	"context"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/errs"
)

// TestReader: a Reader reads what Get reads, inline blocks, ingested ones
// and ingested ones in parts; leaves a block over its max to the caller;
// misses a block stored after its first read until it is Reset, and a
// missing block is NotFound. An ordered Reader does the same, its reads
// in any order.
func TestReader(t *testing.T) {
	t.Run("Reader", func(t *testing.T) { testReader(t, (*Store).NewReader) })
	t.Run("Ordered", func(t *testing.T) { testReader(t, (*Store).NewOrderedReader) })
}

func testReader(t *testing.T, newReader func(*Store) *Reader) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), smallFiles)
	defer s.Close()
	sizes := []int{1, 1000, 100 << 10, 300 << 10, 1 << 20, 5}
	var cids []cid.Cid
	b := s.NewBatch()
	for i, size := range sizes {
		c, data := testBlock(t, uint64(i), size)
		if err := b.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		cids = append(cids, c)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	inline, data := testBlock(t, 50, 700) // stored by itself: inline
	if err := s.Put(ctx, inline, data); err != nil {
		t.Fatal(err)
	}
	cids = append(cids, inline)
	r := newReader(s)
	defer r.Close()
	var buf []byte
	for _, c := range cids {
		want, err := getBytes(ctx, s, c)
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		buf, ok, err = r.Append(buf[:0], c, 2<<20)
		if err != nil || !ok || !bytes.Equal(buf, want) {
			t.Fatalf("Append %s: %d bytes, %v, %v; want %d bytes", c, len(buf), ok, err, len(want))
		}
		if _, ok, err := r.Append(nil, c, len(want)-1); ok || err != nil {
			t.Fatalf("Append %s with max %d: %v, %v; want not ok", c, len(want)-1, ok, err)
		}
	}
	late, data := testBlock(t, 60, 900)
	if err := s.Put(ctx, late, data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Append(nil, late, 1<<20); !errs.Is(errs.NotFound, err) {
		t.Fatalf("Append of a block stored since the Reader's view: %v, want NotFound", err)
	}
	r.Reset()
	if got, ok, err := r.Append(nil, late, 1<<20); err != nil || !ok || !bytes.Equal(got, data) {
		t.Fatalf("Append after Reset: %d bytes, %v, %v", len(got), ok, err)
	}
	missing, _ := testBlock(t, 70, 10)
	if _, _, err := r.Append(nil, missing, 1<<20); !errs.Is(errs.NotFound, err) {
		t.Fatalf("Append of a missing block: %v, want NotFound", err)
	}
}

// BenchmarkReader reads the 1 KiB blocks of a store of 65 536 in the
// order they were stored (a file's leaves, as a peer asks for them),
// through BorrowParts and through a Reader, with the 8 MiB block cache
// repo.Open gives a daemon's store.
func BenchmarkReader(b *testing.B) {
	const blocks = 65536
	s := openTest(b, b.TempDir(), &Options{CacheSize: 8 << 20})
	defer s.Close()
	addBlocks(b, s, 0, blocks, 1<<10)
	cids := make([]cid.Cid, blocks)
	for i := range cids {
		cids[i] = fakeCID(uint64(i))
	}
	ctx := context.Background()
	b.Run("borrow", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			_, release, err := s.BorrowParts(ctx, cids[i%blocks])
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
	b.Run("reader", func(b *testing.B) {
		r := s.NewReader()
		defer r.Close()
		buf := make([]byte, 0, 1<<10)
		for i := 0; b.Loop(); i++ {
			var err error
			if buf, _, err = r.Append(buf[:0], cids[i%blocks], 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
}
