package dag

import (
	"errors"
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3"
)

// TestBlake3Serial checks our single-goroutine BLAKE3 against the library
// for every length around the chunk and group boundaries and for block
// sizes.
func TestBlake3Serial(t *testing.T) {
	data := make([]byte, 4<<20+3000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	var lengths []int
	for n := 0; n <= 40<<10; n++ {
		if n < 3<<10 || n%1024 < 2 || n%1024 > 1022 || n%16384 < 2 {
			lengths = append(lengths, n)
		}
	}
	for _, n := range []int{64 << 10, 256<<10 - 1, 256 << 10, 1<<20 - 1, 1 << 20, 1<<20 + 1, 1<<20 + 16<<10, 4 << 20, len(data)} {
		lengths = append(lengths, n)
	}
	for range 200 {
		lengths = append(lengths, r.IntN(len(data)))
	}
	for _, n := range lengths {
		if got, want := blake3Sum256(data[:n]), blake3.Sum256(data[:n]); got != want {
			t.Fatalf("length %d: got %x, want %x", n, got, want)
		}
	}
}

func BenchmarkBlake3(b *testing.B) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b.Run("serial", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				blake3Sum256(data)
			}
		})
	})
	b.Run("library", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				blake3.Sum256(data)
			}
		})
	})
}

// TestBlockHasher feeds blocks in uneven pieces through a BlockHasher and
// checks it accepts the right CID and refuses a wrong one.
func TestBlockHasher(t *testing.T) {
	data := make([]byte, 1<<20+5000)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, n := range []int{0, 1, 1024, 1025, 16 << 10, 16<<10 + 1, 100 << 10, 1 << 20, len(data)} {
		for _, piece := range []int{1000, 16 << 10, 300 << 10} {
			var h BlockHasher
			for got := 0; got < n; {
				got = min(got+piece, n)
				h.Advance(data[:got])
			}
			c := Sum(Raw, data[:n])
			if err := h.Verify(c, data[:n]); err != nil {
				t.Fatalf("%d bytes in pieces of %d: %v", n, piece, err)
			}
			var h2 BlockHasher
			h2.Advance(data[:n])
			wrong := Sum(Raw, append([]byte{1}, data[:n]...))
			if err := h2.Verify(wrong, data[:n]); !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("%d bytes against a wrong CID: %v, want ErrHashMismatch", n, err)
			}
		}
	}
}
