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
