package gc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/pin"
)

// TestLiveSet checks the mark set with multihashes of every length,
// shorter than its 8-byte keys included, and members added after a
// lookup. (Two that differ only after the first 8 bytes of their digest
// are one key: see liveSet.)
func TestLiveSet(t *testing.T) {
	l := newLiveSet()
	in := [][]byte{{}, {1}, {1, 2, 3}, bytes.Repeat([]byte{7}, 34), []byte("0123456789abcdef")}
	out := [][]byte{{2}, {1, 2, 4}, bytes.Repeat([]byte{8}, 34), []byte("0123456788abcdef")}
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

// TestLiveSetOrder checks lookups in key order (the sweep's), backwards
// and at random against a map, over a set of random keys with gaps.
func TestLiveSetOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mh := func(x uint64) []byte { // a BLAKE3-256 multihash of digest x...
		b := make([]byte, 34)
		b[0], b[1] = 0x1e, 32
		binary.BigEndian.PutUint64(b[2:], x)
		return b
	}
	l, want := newLiveSet(), map[uint64]bool{}
	var all []uint64
	for range 5000 {
		x := rng.Uint64N(1 << 20)
		all = append(all, x)
		if rng.IntN(3) > 0 {
			l.add(mh(x))
			want[x] = true
		}
	}
	check := func(order string, xs []uint64) {
		for _, x := range xs {
			if got := l.has(mh(x)); got != want[x] {
				t.Fatalf("%s: has(%d) = %v, want %v", order, x, got, want[x])
			}
		}
	}
	slices.Sort(all)
	check("ascending", all)
	check("ascending again", all)
	slices.Reverse(all)
	check("descending", all)
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	check("random", all)
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
