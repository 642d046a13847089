package blockstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// fakeCID returns a distinct CID for i without hashing a block's bytes: the
// store does not verify content, and hashing would dominate the benchmark.
func fakeCID(i uint64) cid.Cid {
	d := sha256.Sum256(binary.BigEndian.AppendUint64(nil, i))
	mh, _ := multihash.Encode(d[:], multihash.SHA2_256)
	return cid.NewCidV1(cid.Raw, mh)
}

func fillRandom(b []byte) {
	var x uint64 = 0x9e3779b97f4a7c15
	for i := 0; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
}

// addBlocks adds n blocks of size bytes with one Batch and one Commit, the
// way the importer does, starting at CID number first.
func addBlocks(tb testing.TB, s *Store, first, n uint64, size int) {
	tb.Helper()
	ctx := context.Background()
	data := make([]byte, size)
	fillRandom(data)
	buf := make([]cid.Cid, 0, 1024)
	var cids []cid.Cid
	b := s.NewBatch()
	defer b.Close()
	for i := first; i < first+n; i++ {
		if len(cids) == 0 { // precompute CIDs in groups, as the importer's pipeline does
			cids = buf[:0]
			for j := i; j < first+n && len(cids) < cap(cids); j++ {
				cids = append(cids, fakeCID(j))
			}
		}
		binary.BigEndian.PutUint64(data, i) // distinct contents
		if err := b.Put(ctx, cids[0], data); err != nil {
			tb.Fatal(err)
		}
		cids = cids[1:]
	}
	if err := b.Commit(ctx); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkBatchPut1MiB is the add path: Batch.Put of 1 MiB blocks into a
// fresh store, then Commit (durable), then a synced pin write.
func BenchmarkBatchPut1MiB(b *testing.B) {
	s := openTest(b, b.TempDir(), nil)
	defer s.Close()
	b.SetBytes(1 << 20)
	b.ResetTimer()
	addBlocks(b, s, 0, uint64(b.N), 1<<20)
	if err := s.Keyspace('p').Set([]byte("pin"), []byte("x")); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportWriteAmp(b, s, int64(b.N)<<20)
}

func reportWriteAmp(b *testing.B, s *Store, logical int64) {
	b.ReportMetric(float64(pebbleWritten(s).total())/float64(logical), "write-amp")
}

type written struct{ wal, flushed, ingested, compacted uint64 }

func (w written) total() uint64 { return w.wal + w.flushed + w.ingested + w.compacted }

// pebbleWritten sums what Pebble wrote, level by level (Metrics.Total folds
// the WAL's bytes into "flushed", which would count them twice).
func pebbleWritten(s *Store) written {
	m := s.db.Metrics()
	w := written{wal: m.WAL.BytesWritten}
	for _, l := range m.Levels {
		w.flushed += l.TableBytesFlushed + l.BlobBytesFlushed
		w.ingested += l.TableBytesIngested
		w.compacted += l.TableBytesCompacted + l.BlobBytesCompacted
	}
	return w
}

func BenchmarkGet1MiB(b *testing.B) {
	const blocks = 256
	s := openTest(b, b.TempDir(), nil)
	defer s.Close()
	addBlocks(b, s, 0, blocks, 1<<20)
	cids := make([]cid.Cid, blocks)
	for i := range cids {
		cids[i] = fakeCID(uint64(i))
	}
	ctx := context.Background()
	b.SetBytes(1 << 20)
	b.Run("serial", func(b *testing.B) {
		b.SetBytes(1 << 20)
		for i := 0; b.Loop(); i++ {
			if _, err := s.Get(ctx, cids[i%blocks]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("release", func(b *testing.B) {
		b.SetBytes(1 << 20)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			blk, err := s.Get(ctx, cids[i%blocks])
			if err != nil {
				b.Fatal(err)
			}
			blk.Release()
		}
	})
	b.Run("append", func(b *testing.B) {
		b.SetBytes(1 << 20)
		buf := make([]byte, 0, 1<<20)
		for i := 0; b.Loop(); i++ {
			var err error
			if buf, err = s.GetAppend(ctx, buf[:0], cids[i%blocks]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("view", func(b *testing.B) {
		b.SetBytes(1 << 20)
		for i := 0; b.Loop(); i++ {
			if err := s.View(ctx, cids[i%blocks], func([]byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel8", func(b *testing.B) {
		b.SetBytes(1 << 20)
		b.SetParallelism(8)
		var n atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, cids[n.Add(1)%blocks]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkPutSmall stores 4 KiB blocks: one synced Store.Put each, and
// through a Batch committed every 1000 blocks.
func BenchmarkPutSmall(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 4<<10)
	fillRandom(data)
	b.Run("Put", func(b *testing.B) {
		s := openTest(b, b.TempDir(), nil)
		defer s.Close()
		b.SetBytes(int64(len(data)))
		for i := 0; b.Loop(); i++ {
			if err := s.Put(ctx, fakeCID(uint64(i)), data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Batch", func(b *testing.B) {
		s := openTest(b, b.TempDir(), nil)
		defer s.Close()
		b.SetBytes(int64(len(data)))
		bt := s.NewBatch()
		defer bt.Close()
		for i := 0; b.Loop(); i++ {
			if err := bt.Put(ctx, fakeCID(uint64(i)), data); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 999 {
				if err := bt.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := bt.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkDelete deletes b.N 1 MiB blocks in one call (as gc does) and
// reports the time of Reclaim and the disk usage before and after.
func BenchmarkDelete(b *testing.B) {
	s := openTest(b, b.TempDir(), nil)
	defer s.Close()
	addBlocks(b, s, 0, uint64(b.N), 1<<20)
	mhs := make([]multihash.Multihash, b.N)
	for i := range mhs {
		mhs[i] = fakeCID(uint64(i)).Hash()
	}
	ctx := context.Background()
	before := s.db.Metrics().DiskSpaceUsage()
	b.SetBytes(1 << 20)
	b.ResetTimer()
	n, _, err := s.Delete(ctx, mhs)
	if err != nil || n != b.N {
		b.Fatalf("Delete = %d, %v", n, err)
	}
	b.StopTimer()
	t0 := time.Now()
	if err := s.Reclaim(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(t0).Milliseconds()), "reclaim-ms")
	b.ReportMetric(float64(before)/1e6, "disk-before-MB")
	b.ReportMetric(float64(waitDiskBelow(s, before/2))/1e6, "disk-after-MB")
}

// waitDiskBelow waits up to 2 s for obsolete files to be deleted.
func waitDiskBelow(s *Store, limit uint64) uint64 {
	deadline := time.Now().Add(2 * time.Second)
	for {
		u := s.db.Metrics().DiskSpaceUsage()
		if u < limit || time.Now().After(deadline) {
			return u
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procWriteBytes returns the bytes this process caused to be written to
// storage, from /proc/self/io.
func procWriteBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func procStatus(field string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// TestMeasureAdd adds BLOCKSTORE_MEASURE_GIB GiB (unset: skipped) of 1 MiB
// blocks and prints MB/s, write amplification, delete and reclaim times.
func TestMeasureAdd(t *testing.T) {
	gib, _ := strconv.Atoi(os.Getenv("BLOCKSTORE_MEASURE_GIB"))
	if gib == 0 {
		t.Skip("set BLOCKSTORE_MEASURE_GIB")
	}
	var o Options
	if mb, _ := strconv.Atoi(os.Getenv("BLOCKSTORE_FILE_MB")); mb > 0 {
		o.FileSize = int64(mb) << 20
	}
	s := openTest(t, t.TempDir(), &o)
	defer s.Close()
	ctx := context.Background()
	n := uint64(gib) << 10
	io0 := procWriteBytes()
	t0 := time.Now()
	addBlocks(t, s, 0, n, 1<<20)
	if err := s.Keyspace('p').Set([]byte("pin"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	d := time.Since(t0)
	t.Logf("process wrote %d bytes to disk (/proc/self/io): %.3f per logical byte", procWriteBytes()-io0, float64(procWriteBytes()-io0)/float64(n<<20))
	m := s.db.Metrics()
	logical := float64(n << 20)
	t.Logf("add %d GiB: %.0f MB/s", gib, logical/1e6/d.Seconds())
	w := pebbleWritten(s)
	t.Logf("pebble wrote: WAL %d, flushed %d, ingested %d, compacted %d; write-amp %.4f",
		w.wal, w.flushed, w.ingested, w.compacted, float64(w.total())/logical)
	t.Logf("peak RSS (VmHWM): %s", procStatus("VmHWM"))
	t.Logf("L0 files %d, compaction debt %d, disk %d", m.Levels[0].TablesCount, m.Compact.EstimatedDebt, m.DiskSpaceUsage())

	// Get throughput, serial and 8 readers.
	t0 = time.Now()
	for i := range n {
		if _, err := s.Get(ctx, fakeCID(i)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("get serial: %.0f MB/s", logical/1e6/time.Since(t0).Seconds())
	t0 = time.Now()
	var wg sync.WaitGroup
	var next atomic.Uint64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if _, err := s.Get(ctx, fakeCID(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("get 8 readers: %.0f MB/s", logical/1e6/time.Since(t0).Seconds())

	// Delete the first GiB.
	mhs := make([]multihash.Multihash, 1024)
	for i := range mhs {
		mhs[i] = fakeCID(uint64(i)).Hash()
	}
	before := s.db.Metrics().DiskSpaceUsage()
	t0 = time.Now()
	if _, _, err := s.Delete(ctx, mhs); err != nil {
		t.Fatal(err)
	}
	td := time.Since(t0)
	t0 = time.Now()
	if err := s.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	tr := time.Since(t0)
	after := waitDiskBelow(s, before-(900<<20))
	t.Logf("delete 1 GiB: %v, reclaim %v (total %v since delete); disk %d -> %d MB",
		td, tr, time.Since(t0)+td, before>>20, after>>20)
	if gib < 2 {
		return
	}
	// Delete every other block of the second GiB: the files are compacted.
	mhs = mhs[:0]
	for i := uint64(1024); i < 2048; i += 2 {
		mhs = append(mhs, fakeCID(i).Hash())
	}
	before = s.db.Metrics().DiskSpaceUsage()
	t0 = time.Now()
	if _, _, err := s.Delete(ctx, mhs); err != nil {
		t.Fatal(err)
	}
	td = time.Since(t0)
	t0 = time.Now()
	if err := s.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	tr = time.Since(t0)
	after = waitDiskBelow(s, before-(400<<20))
	t.Logf("delete every other block of 1 GiB: %v, reclaim %v; disk %d -> %d MB", td, tr, before>>20, after>>20)
}

// discardWritable is an objstorage.Writable that drops what it is given.
type discardWritable struct{}

func (discardWritable) Write(p []byte) error { return nil }
func (discardWritable) Finish() error        { return nil }
func (discardWritable) Abort()               {}

// BenchmarkSSTableParts is the CPU cost of building sstables from 1 MiB
// blocks (no disk): as one value, and in partSize parts as Batch writes
// them. The blocks come from 256 MiB of memory, as fetched blocks do.
func BenchmarkSSTableParts(b *testing.B) {
	src := make([][]byte, 256)
	for i := range src {
		_, src[i] = testBlock(b, uint64(i), 1<<20)
	}
	for _, part := range []int{1 << 20, partSize} {
		b.Run(fmt.Sprintf("part=%dKiB", part>>10), func(b *testing.B) {
			b.SetBytes(1 << 20)
			var w *sstable.Writer
			for i := 0; b.Loop(); i++ {
				if i%256 == 0 {
					if w != nil {
						w.Close()
					}
					w = sstable.NewWriter(discardWritable{}, writerOpts)
				}
				v := src[i%len(src)]
				for j := 0; j*part < len(v); j++ {
					if err := w.Set(partKey(uint64(i), j), v[j*part:(j+1)*part]); err != nil {
						b.Fatal(err)
					}
				}
			}
			w.Close()
		})
	}
}

// BenchmarkHasMiss looks up blocks that are not stored, in stores of 0,
// 100 000 and 1 000 000 blocks written as an importer writes them (a
// Batch committed every 10 000 blocks, so the index keys spread over
// Pebble's levels): the dedup check of every new block an add or a fetch
// stores. The store is reopened first, as a daemon finds it; "pebble"
// never builds the miss filter, "filter" builds it first.
func BenchmarkHasMiss(b *testing.B) {
	for _, n := range []uint64{0, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			opts := &Options{CacheSize: 8 << 20, SmallBatch: 64 << 10}
			s := openTest(b, dir, opts)
			for i := uint64(0); i < n; i += 10_000 {
				addBlocks(b, s, i, min(10_000, n-i), 100)
			}
			s.Close()
			misses := make([]cid.Cid, 1<<14)
			for i := range misses {
				misses[i] = fakeCID(1<<40 + uint64(i))
			}
			for _, filtered := range []bool{false, true} {
				name := map[bool]string{false: "pebble", true: "filter"}[filtered]
				b.Run(name, func(b *testing.B) {
					s := openTest(b, dir, opts)
					defer s.Close()
					if filtered {
						buildFilter(b, s)
					} else {
						s.stopFilter() // never builds one
					}
					benchMisses(b, s, misses)
				})
			}
		})
	}
}

func benchMisses(b *testing.B, s *Store, misses []cid.Cid) {
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		ok, err := s.Has(ctx, misses[i%len(misses)])
		if err != nil || ok {
			b.Fatalf("Has = %v, %v", ok, err)
		}
	}
}
