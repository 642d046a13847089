package blockstore

import (
	"bytes"
	"context"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestInnerNodesInline checks that a Batch writing bulk data into sstables
// still stores small dag-pb nodes inline in the index (where gc's mark
// reads them without a random read each), and large ones and raw blocks
// in the sstables.
func TestInnerNodesInline(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), smallFiles)
	defer s.Close()
	data := make([]byte, 300<<10)
	fillRandom(data)
	node := func(i uint64) cid.Cid { return cid.NewCidV1(cid.DagProtobuf, fakeCID(i).Hash()) }
	b := s.NewBatch()
	blocks := []struct {
		c      cid.Cid
		size   int
		inline bool
	}{
		{fakeCID(1), 300 << 10, false},
		{node(2), 1000, true},
		{fakeCID(3), 1000, false}, // raw, after the switch to sstables
		{node(4), maxInlineNode, true},
		{node(5), maxInlineNode + 1, false},
	}
	for _, bl := range blocks {
		if err := b.Put(ctx, bl.c, data[:bl.size]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	for _, bl := range blocks {
		e, ok, err := s.lookup(bl.c.Hash())
		if err != nil || !ok {
			t.Fatalf("%s: %v, %v", bl.c, ok, err)
		}
		if inline := e.inline != nil; inline != bl.inline {
			t.Errorf("%s (%d bytes): inline %v, want %v", bl.c, bl.size, inline, bl.inline)
		}
		got, err := getBytes(ctx, s, bl.c)
		if err != nil || !bytes.Equal(got, data[:bl.size]) {
			t.Errorf("%s: read back %d bytes, %v", bl.c, len(got), err)
		}
	}
	checkConsistent(t, s)
}
