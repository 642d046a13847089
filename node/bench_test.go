package node

import (
	"context"
	"io"
	"math/rand/v2"
	"testing"
)

// benchSize is the file size of the end-to-end benchmarks.
const benchSize = 256 << 20

// randReader yields pseudo-random bytes cheaply, so the benchmark measures
// share, not the source.
type randReader struct{ r *rand.ChaCha8 }

func (r randReader) Read(p []byte) (int, error) { return r.r.Read(p) }

// BenchmarkAdd measures the whole add path: chunk, hash, store, commit
// (fsync) and pin, into a fresh repository each time.
func BenchmarkAdd(b *testing.B) {
	b.SetBytes(benchSize)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		n, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		src := io.LimitReader(randReader{rand.NewChaCha8([32]byte{byte(i)})}, benchSize)
		b.StartTimer()
		if _, err := n.Add(context.Background(), "bench", src, AddOptions{}, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		n.Close()
		b.StartTimer()
	}
}

// BenchmarkCat measures reading a stored file back, every block verified.
func BenchmarkCat(b *testing.B) {
	n, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	c, err := n.Add(ctx, "bench", io.LimitReader(randReader{rand.NewChaCha8([32]byte{})}, benchSize), AddOptions{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.Cat(ctx, c, io.Discard, FetchOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
