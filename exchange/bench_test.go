package exchange

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
)

// copyPutter copies each block into a reused buffer: the cost of a Put
// that copies, without a store behind it.
type copyPutter struct {
	mu  sync.Mutex
	buf []byte
}

func (p *copyPutter) Put(ctx context.Context, c cid.Cid, data []byte) error {
	p.mu.Lock()
	p.buf = append(p.buf[:0], data...)
	p.mu.Unlock()
	return nil
}

// benchDAG is a DAG the benchmarks fetch, made once per test binary.
type benchDAG struct {
	once  sync.Once
	size  int // bytes of file data
	chunk int // bytes per leaf
	root  cid.Cid
	src   *dag.MemStore
}

const benchSize = 256 << 20

var (
	bigDAG = &benchDAG{size: benchSize, chunk: 1 << 20}
	// smallDAG: 1 KiB leaves, the cost per block of the exchange rather
	// than per byte (a tree of small files is mostly such blocks).
	smallDAG = &benchDAG{size: 16 << 20, chunk: 1 << 10}
)

func (d *benchDAG) source(b *testing.B) (cid.Cid, *dag.MemStore) {
	d.once.Do(func() {
		d.root, d.src, _ = makeDAG(b, d.size, d.chunk, 42)
	})
	return d.root, d.src
}

// reportBlocks reports the rate of d's leaves over the benchmark.
func (d *benchDAG) reportBlocks(b *testing.B) {
	b.ReportMetric(float64(d.size/d.chunk)*float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
}

func benchFetch(b *testing.B, providers int, opts linkOpts, stream bool) {
	benchFetchDAG(b, bigDAG, providers, opts, stream)
}

func benchFetchDAG(b *testing.B, d *benchDAG, providers int, opts linkOpts, stream bool) {
	root, src := d.source(b)
	n := newMemNet()
	var provs []*testPeer
	for i := range providers {
		provs = append(provs, newTestPeer(b, n, fmt.Sprint("prov", i), src, opts, Config{}))
	}
	client := newTestPeer(b, n, "client", dag.NewMemStore(), linkOpts{}, Config{})
	b.SetBytes(int64(d.size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		so := SessionOptions{Providers: providerIDs(provs...)}
		if stream {
			so.Stream = true
		} else {
			so.Putter = &copyPutter{}
		}
		s := client.e.NewSession(ctx, root, so)
		if stream {
			r, err := dag.NewFileReader(ctx, s, root)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Wait(); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	d.reportBlocks(b)
}

// BenchmarkFetch fetches 256 MiB of 1 MiB blocks over the in-memory
// network, verifying each block and handing it to a copying Put.
func BenchmarkFetch(b *testing.B) {
	b.Run("1provider", func(b *testing.B) { benchFetch(b, 1, linkOpts{}, false) })
	b.Run("4providers", func(b *testing.B) { benchFetch(b, 4, linkOpts{}, false) })
}

// BenchmarkFetchSmall fetches 16 MiB of 1 KiB blocks from one provider
// over the in-memory network: the work per block of both sides.
func BenchmarkFetchSmall(b *testing.B) {
	b.Run("store", func(b *testing.B) { benchFetchDAG(b, smallDAG, 1, linkOpts{}, false) })
	b.Run("stream", func(b *testing.B) { benchFetchDAG(b, smallDAG, 1, linkOpts{}, true) })
	// Round trips of 1, 4 and 20 ms (on the provider's side of the link;
	// 4 ms as when a server batches its answers and both processes are
	// busy): the requests in flight keep blocks coming (Little's law: a
	// window of 256 covers 256 000, 64 000 and 12 800 blocks/s), as far
	// as the CPU allows. The window must grow to its maximum for that.
	for _, rtt := range []time.Duration{time.Millisecond, 4 * time.Millisecond, 20 * time.Millisecond} {
		opts := linkOpts{latency: rtt}
		b.Run(fmt.Sprintf("store-rtt%v", rtt), func(b *testing.B) { benchFetchDAG(b, smallDAG, 1, opts, false) })
		b.Run(fmt.Sprintf("stream-rtt%v", rtt), func(b *testing.B) { benchFetchDAG(b, smallDAG, 1, opts, true) })
	}
}

// BenchmarkFetchStream reads the file through the session's getter with
// the DAG reader, as share cat does (the reader verifies every block again).
func BenchmarkFetchStream(b *testing.B) {
	b.Run("1provider", func(b *testing.B) { benchFetch(b, 1, linkOpts{}, true) })
}

// BenchmarkFetchSwarm fetches from 4 providers limited to 20 MB/s each.
func BenchmarkFetchSwarm(b *testing.B) {
	benchFetch(b, 4, linkOpts{rate: 20e6, latency: time.Millisecond}, false)
}

// BenchmarkServe measures the server alone: one client pipelines WANTs for
// every block and reads the BLOCK frames without verifying them.
func BenchmarkServe(b *testing.B) {
	b.Run("1MiB", func(b *testing.B) { benchServe(b, bigDAG) })
	b.Run("1KiB", func(b *testing.B) { benchServe(b, smallDAG) })
}

func benchServe(b *testing.B, d *benchDAG) {
	root, src := d.source(b)
	var want []byte
	for _, c := range allCIDs(b, src, root) {
		want = appendMessage(want, msgWantBlock, c)
	}
	n := newMemNet()
	prov := newTestPeer(b, n, "prov", src, linkOpts{}, Config{})
	client := n.addHost("client", linkOpts{})
	b.SetBytes(int64(d.size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		st, err := client.NewStream(context.Background(), prov.h.id, testProto)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			st.Write(want)
			st.CloseWrite()
		}()
		fr := newFrameReader(st)
		for {
			_, buf, err := fr.next()
			putBuf(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	d.reportBlocks(b)
}
