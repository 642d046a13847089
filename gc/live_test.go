package gc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/pin"
)

// TestLiveSet checks the mark set with multihashes of every length,
// shorter than its 8-byte keys included, and members added after a
// lookup.
func TestLiveSet(t *testing.T) {
	l := newLiveSet()
	in := [][]byte{{}, {1}, {1, 2, 3}, bytes.Repeat([]byte{7}, 34), []byte("0123456789abcdef")}
	out := [][]byte{{2}, {1, 2, 4}, bytes.Repeat([]byte{8}, 34), []byte("0123456789abcdeg")}
	for _, mh := range in {
		l.add(mh)
	}
	l.add(in[3]) // twice
	for _, mh := range in {
		if !l.has(mh) {
			t.Errorf("%x: not in the set", mh)
		}
	}
	for _, mh := range out {
		if l.has(mh) {
			t.Errorf("%x: in the set", mh)
		}
	}
	l.add(out[0])
	if !l.has(out[0]) {
		t.Errorf("%x: added after a lookup, not in the set", out[0])
	}
}

// BenchmarkGCNothingToFree collects a store of pins files of 11 blocks
// each (8-12 KiB in 1 KiB chunks, as bigrepo.sh builds) where everything
// is pinned. -benchtime=1x with -pins=100000 is bigrepo.sh's repository.
func BenchmarkGCNothingToFree(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n, "pins"), func(b *testing.B) {
			ctx := context.Background()
			bs, pins := bigStore(b, n)
			var lock Lock
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				res, err := Collect(ctx, &lock, bs, pins)
				if err != nil || res.Blocks != 0 {
					b.Fatalf("freed %d blocks, %v", res.Blocks, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(11*n), "ns/block")
		})
	}
}

// bigStore is a store of n pinned files of 8-12 KiB in 1 KiB chunks.
func bigStore(b *testing.B, n int) (*blockstore.Store, *pin.Set) {
	b.Helper()
	ctx := context.Background()
	bs, err := blockstore.Open(filepath.Join(b.TempDir(), "db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bs.Close() })
	pins := pin.New(bs.Keyspace('p'))
	spec, _ := chunker.FixedSize(1024)
	rng := rand.New(rand.NewPCG(1, 2))
	batch := bs.NewBatch()
	defer batch.Close()
	list := make([]pin.Pin, 0, n)
	buf := make([]byte, 12<<10)
	for range n {
		data := buf[:8<<10+rng.IntN(4<<10)]
		for i := 0; i+8 <= len(data); i += 8 {
			binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
		}
		c, _, err := dag.ImportFile(ctx, bytes.NewReader(data), batch, dag.ImportOptions{Chunker: spec})
		if err != nil {
			b.Fatal(err)
		}
		list = append(list, pin.Pin{Cid: c, Mode: pin.Recursive})
	}
	if err := batch.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	if err := pins.AddMany(ctx, list); err != nil {
		b.Fatal(err)
	}
	return bs, pins
}
