package blockstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/internal/drop"
)

func testBlock(t testing.TB, seed uint64, size int) (cid.Cid, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, uint64(size)))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh), data
}

func openTest(t testing.TB, dir string, o *Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// abandonAndReopen drops b without a Commit (as a killed process would),
// reopens the store in dir and checks it is consistent.
func abandonAndReopen(t testing.TB, b *Batch, s *Store, dir string) *Store {
	t.Helper()
	b.Close()
	s.Close()
	s = openTest(t, dir, nil)
	checkConsistent(t, s)
	return s
}

// smallFiles makes batches switch to sstables early and roll files often.
var smallFiles = &Options{SmallBatch: 64 << 10, FileSize: 1 << 20}

// checkConsistent verifies the invariant: every index entry's data is there
// with the right length.
func checkConsistent(t testing.TB, s *Store) (blocks int) {
	t.Helper()
	ctx := context.Background()
	var bytes int64
	err := s.ForEach(ctx, func(mh multihash.Multihash, size int) error {
		blocks++
		bytes += int64(size)
		data, err := getBytes(ctx, s, cid.NewCidV1(cid.Raw, mh))
		if err != nil {
			return err
		}
		if len(data) != size {
			return fmt.Errorf("%s: got %d bytes, index says %d", mh, len(data), size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCount(t, s, blocks, bytes)
	return blocks
}

// checkCount fails unless Stat says what a scan of the index found.
func checkCount(t testing.TB, s *Store, blocks int, bytes int64) {
	t.Helper()
	st, err := s.Stat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks != blocks || st.Bytes != bytes {
		t.Fatalf("Stat says %d blocks, %d bytes; the index holds %d blocks, %d bytes", st.Blocks, st.Bytes, blocks, bytes)
	}
}

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		opts  *Options
		batch bool
		sizes []int
	}{
		{"put", nil, false, []int{0, 1, 1000, 1 << 20}},
		{"small batch", nil, true, []int{0, 1, 1000, 100 << 10}},
		{"bulk batch", smallFiles, true, []int{0, 1, 1000, 100 << 10, 1 << 20, 300 << 10, 1 << 20, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, tt.opts)
			var cids []cid.Cid
			var datas [][]byte
			b := s.NewBatch()
			for i, size := range tt.sizes {
				c, data := testBlock(t, uint64(i), size)
				cids, datas = append(cids, c), append(datas, bytes.Clone(data))
				if tt.batch {
					if err := b.Put(ctx, c, data); err != nil {
						t.Fatal(err)
					}
					// The caller may reuse its buffer.
					clear(data)
					if err := b.Put(ctx, c, data); err != nil { // duplicate: skipped
						t.Fatal(err)
					}
				} else if err := s.Put(ctx, c, data); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			check := func(s *Store) {
				t.Helper()
				for i, c := range cids {
					got, err := getBytes(ctx, s, c)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, datas[i]) {
						t.Fatalf("block %d: wrong bytes", i)
					}
					if ok, err := s.Has(ctx, c); err != nil || !ok {
						t.Fatalf("Has(%d) = %v, %v", i, ok, err)
					}
					if n, err := s.Size(ctx, c); err != nil || n != len(datas[i]) {
						t.Fatalf("Size(%d) = %d, %v; want %d", i, n, err, len(datas[i]))
					}
				}
				// Same multihash, other codec: the same entry.
				dagpb := cid.NewCidV1(cid.DagProtobuf, cids[0].Hash())
				if ok, _ := s.Has(ctx, dagpb); !ok {
					t.Fatal("dag-pb CID of a stored raw block not found")
				}
				st, err := s.Stat(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var total int64
				for _, d := range datas {
					total += int64(len(d))
				}
				if st.Blocks != len(cids) || st.Bytes != total || st.DiskUsage == 0 {
					t.Fatalf("Stat = %+v, want %d blocks, %d bytes", st, len(cids), total)
				}
				checkConsistent(t, s)
			}
			check(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir, tt.opts)
			defer s.Close()
			check(s)
			if ents, _ := os.ReadDir(filepath.Join(dir, "ingest")); len(ents) != 0 {
				t.Fatalf("staging not empty: %v", ents)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), nil)
	defer s.Close()
	c, _ := testBlock(t, 1, 10)
	if _, err := getBytes(ctx, s, c); !errs.Is(errs.NotFound, err) {
		t.Fatalf("Get: %v", err)
	}
	if _, err := s.Size(ctx, c); !errs.Is(errs.NotFound, err) {
		t.Fatalf("Size: %v", err)
	}
	if ok, err := s.Has(ctx, c); ok || err != nil {
		t.Fatalf("Has: %v %v", ok, err)
	}
}

func TestDeleteReclaim(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), smallFiles)
	defer s.Close()
	const n = 40
	var cids []cid.Cid
	b := s.NewBatch()
	for i := range n {
		c, data := testBlock(t, uint64(i), 100<<10)
		cids = append(cids, c)
		if err := b.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	small, sdata := testBlock(t, 1000, 10)
	if err := s.Put(ctx, small, sdata); err != nil {
		t.Fatal(err)
	}
	// Delete every block but a few, plus a missing one.
	var del []multihash.Multihash
	for i, c := range cids {
		if i%10 != 3 {
			del = append(del, c.Hash())
		}
	}
	missing, _ := testBlock(t, 2000, 10)
	del = append(del, small.Hash(), missing.Hash())
	blocks, freed, err := s.Delete(ctx, del)
	if err != nil {
		t.Fatal(err)
	}
	if blocks != len(del)-1 || freed != int64(len(del)-2)*(100<<10)+10 {
		t.Fatalf("Delete = %d blocks %d bytes", blocks, freed)
	}
	if blocks, _, _ := s.Delete(ctx, del); blocks != 0 {
		t.Fatalf("second Delete freed %d blocks", blocks)
	}
	if err := s.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range cids {
		ok, err := s.Has(ctx, c)
		if err != nil || ok != (i%10 == 3) {
			t.Fatalf("Has(%d) = %v %v", i, ok, err)
		}
	}
	if got := checkConsistent(t, s); got != n/10 {
		t.Fatalf("%d blocks left, want %d", got, n/10)
	}
	st, _ := s.Stat(ctx)
	if st.Blocks != n/10 || st.Bytes != n/10*(100<<10) {
		t.Fatalf("Stat = %+v", st)
	}
	// Deleted blocks can be stored again.
	c, data := testBlock(t, 0, 100<<10)
	if err := s.Put(ctx, c, data); err != nil {
		t.Fatal(err)
	}
	if got, err := getBytes(ctx, s, c); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after re-Put: %v", err)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	s.Close()
	s = openTest(t, dir, nil)
	s.Close()
}

func TestBatchCloseUncommitted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, smallFiles)
	b := s.NewBatch()
	for i := range 30 {
		c, data := testBlock(t, uint64(i), 100<<10)
		if err := b.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	checkConsistent(t, s)
	s.Close()
	s = openTest(t, dir, smallFiles)
	defer s.Close()
	checkConsistent(t, s)
}

func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), smallFiles)
	defer s.Close()
	const writers, blocks = 4, 30
	var wg sync.WaitGroup
	errc := make(chan error, 3*writers)
	for w := range writers {
		wg.Add(2)
		go func() { // writers overlap: block i is written by every writer
			defer wg.Done()
			b := s.NewBatch()
			defer b.Close()
			for i := range blocks {
				c, data := testBlock(t, uint64(i), 50<<10+w)
				if err := b.Put(ctx, c, data); err != nil {
					errc <- err
					return
				}
				if i%10 == 9 {
					if err := b.Commit(ctx); err != nil {
						errc <- err
						return
					}
				}
			}
		}()
		go func() { // readers and deleters
			defer wg.Done()
			for i := range blocks {
				c, data := testBlock(t, uint64(i), 50<<10+(w+1)%writers)
				got, err := getBytes(ctx, s, c)
				if err == nil && !bytes.Equal(got, data) {
					errc <- fmt.Errorf("block %d: wrong bytes", i)
					return
				}
				if err != nil && !errs.Is(errs.NotFound, err) {
					errc <- err
					return
				}
				if i%7 == 0 {
					if _, _, err := s.Delete(ctx, []multihash.Multihash{c.Hash()}); err != nil {
						errc <- err
						return
					}
				}
				if err := s.Put(ctx, c, data); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := s.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	if got := checkConsistent(t, s); got != writers*blocks {
		t.Fatalf("%d blocks, want %d", got, writers*blocks)
	}
}

func TestKeyspace(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	defer s.Close()
	p, r, last := s.Keyspace('p'), s.Keyspace('r'), s.Keyspace(0xff)
	for _, kv := range []struct{ k, v string }{{"b", "2"}, {"a", "1"}, {"c", ""}} {
		if err := p.Set([]byte(kv.k), []byte(kv.v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Set([]byte("a"), []byte("other")); err != nil {
		t.Fatal(err)
	}
	if err := last.Set([]byte("z"), []byte("last")); err != nil {
		t.Fatal(err)
	}
	if v, err := p.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("Get = %q %v", v, err)
	}
	if _, err := p.Get([]byte("x")); !errs.Is(errs.NotFound, err) {
		t.Fatalf("Get missing: %v", err)
	}
	if err := p.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete([]byte("nope")); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := p.Iterate(func(k, v []byte) error { got = append(got, string(k)+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[a=1 c=]" {
		t.Fatalf("Iterate = %v", got)
	}
	got = nil
	last.Iterate(func(k, v []byte) error { got = append(got, string(k)+"="+string(v)); return nil })
	if fmt.Sprint(got) != "[z=last]" {
		t.Fatalf("Iterate 0xff = %v", got)
	}
	stop := errors.New("stop")
	if err := p.Iterate(func(k, v []byte) error { return stop }); err != stop {
		t.Fatalf("Iterate error = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("reserved prefix did not panic")
		}
	}()
	s.Keyspace('b')
}

// TestBatchFileSizeCheckpoints: with SetFileSize, the files a batch
// finished are durable and visible without Commit (a fetch's resume
// checkpoints); only the unfinished file is lost when the batch is
// abandoned.
func TestBatchFileSizeCheckpoints(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, &Options{SmallBatch: 64 << 10})
	b := s.NewBatch()
	b.SetFileSize(1 << 20)
	const n, size = 40, 100 << 10 // 4 MB: three files of 11 blocks finish
	var cids []cid.Cid
	for i := range n {
		c, data := testBlock(t, uint64(1000+i), size)
		if err := b.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		cids = append(cids, c)
	}
	// The last finished file ingests in the background: wait for it with
	// a deadline rather than for a fixed time.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, err := s.Has(ctx, cids[32]); err != nil {
			t.Fatal(err)
		} else if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the third finished file never became visible")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s = abandonAndReopen(t, b, s, dir)
	defer s.Close()
	for i, c := range cids {
		ok, err := s.Has(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if want := i < 33; ok != want {
			t.Fatalf("block %d: stored = %v, want %v (files of 11 blocks, 3 finished)", i, ok, want)
		}
	}
}

// TestBorrowAndDropBehind stores blocks inline and in a drop-behind batch
// of sstables, then borrows each: the lent bytes are the stored ones, and
// the store closes cleanly once all are released (Pebble reports leaked
// reads on Close).
func TestBorrowAndDropBehind(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), smallFiles)
	small, smallData := testBlock(t, 1, 100)
	if err := s.Put(ctx, small, smallData); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.SetDropBehind(true)
	want := map[cid.Cid][]byte{small: smallData}
	for i := range 40 {
		c, data := testBlock(t, uint64(100+i), 300<<10) // 12 MB: several files
		if err := b.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		want[c] = data
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	var releases []func()
	for c, data := range want {
		got, release, err := s.Borrow(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("borrowed %s: %d bytes that differ from the stored ones", c, len(got))
		}
		releases = append(releases, release)
	}
	missing, _ := testBlock(t, 999, 10)
	if _, _, err := s.Borrow(ctx, missing); !errs.Is(errs.NotFound, err) {
		t.Fatalf("Borrow of a missing block: %v, want errs.NotFound", err)
	}
	for _, r := range releases {
		r()
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after releasing every borrowed block: %v", err)
	}
}

// TestBatchCheckpointEvery: with a clock that moves 2 s per block, a
// batch with a 1 s checkpoint interval makes its blocks durable as it
// goes, even those first held in memory, though no file reaches its size.
func TestBatchCheckpointEvery(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, &Options{SmallBatch: 1 << 20})
	b := s.NewBatch()
	var now time.Time
	b.now = func() time.Time { return now }
	b.SetFileSize(1 << 30)
	b.SetCheckpointEvery(time.Second)
	var cids []cid.Cid
	for i := range 6 {
		c, data := testBlock(t, uint64(5000+i), 100<<10)
		if err := b.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		// Let a checkpoint finish before the next block, as the
		// seconds between blocks would.
		if err := b.wait(ctx); err != nil {
			t.Fatal(err)
		}
		cids = append(cids, c)
		now = now.Add(2 * time.Second)
	}
	s = abandonAndReopen(t, b, s, dir)
	defer s.Close()
	for i, c := range cids {
		if ok, err := s.Has(ctx, c); err != nil || !ok {
			t.Fatalf("block %d: stored = %v (%v), want true after its checkpoint", i, ok, err)
		}
	}
}

// TestDropBehindLeavesNoCache: the sstables of a drop-behind batch leave
// the page cache entirely once ingested, the chunks written last (which
// the writer keeps while ingest reads the file's bounds) included.
func TestDropBehindLeavesNoCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, &Options{SmallBatch: 64 << 10, FileSize: 24 << 20})
	defer s.Close()
	b := s.NewBatch()
	b.SetDropBehind(true)
	for i := range 48 {
		c, data := testBlock(t, uint64(7000+i), 1<<20)
		if err := b.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	var total, cached int64
	for _, p := range tables {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		n, err := drop.Resident(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		cached += n
	}
	if total < 48<<20 {
		t.Fatalf("found %d bytes of sstables in %v, want the 48 MiB written", total, tables)
	}
	if cached > 2<<20 {
		t.Fatalf("%d of %d bytes of fetched sstables still in the page cache", cached, total)
	}
}

// dataKeys counts the visible data keys: all of them, and those of part 0.
func dataKeys(t *testing.T, s *Store) (keys, blocks int) {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixData}, UpperBound: []byte{prefixData + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		keys++
		if len(it.Key()) == 9 {
			blocks++
		}
	}
	return keys, blocks
}

// TestParts: blocks above partSize are stored in parts, read back whole
// by every reader, deleted whole, and a damaged part is an error.
func TestParts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), smallFiles)
	defer s.Close()
	sizes := []int{partSize - 1, partSize, partSize + 1, 1 << 20, 1<<20 + 7, 3 * partSize}
	wantParts := []int{1, 1, 2, 4, 5, 3}
	var cids []cid.Cid
	var datas [][]byte
	b := s.NewBatch()
	for i, n := range sizes {
		c, data := testBlock(t, uint64(i), n)
		cids, datas = append(cids, c), append(datas, data)
		if err := b.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	total := 0
	for i, c := range cids {
		total += wantParts[i]
		if got, err := getBytes(ctx, s, c); err != nil || !bytes.Equal(got, datas[i]) {
			t.Fatalf("Get %d bytes: %v (equal %v)", sizes[i], err, bytes.Equal(got, datas[i]))
		}
		if got, err := s.GetAppend(ctx, []byte("x"), c); err != nil || !bytes.Equal(got, append([]byte("x"), datas[i]...)) {
			t.Fatalf("GetAppend %d bytes: %v", sizes[i], err)
		}
		if err := s.View(ctx, c, func(got []byte) error {
			if !bytes.Equal(got, datas[i]) {
				return errors.New("View: wrong bytes")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		parts, release, err := s.BorrowParts(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != wantParts[i] || !bytes.Equal(bytes.Join(parts, nil), datas[i]) {
			t.Fatalf("%d bytes: %d parts, want %d (or wrong bytes)", sizes[i], len(parts), wantParts[i])
		}
		release()
		if n, err := s.Size(ctx, c); err != nil || n != sizes[i] {
			t.Fatalf("Size = %d %v, want %d", n, err, sizes[i])
		}
	}
	if keys, blocks := dataKeys(t, s); keys != total || blocks != len(sizes) {
		t.Fatalf("%d data keys of %d blocks, want %d of %d", keys, blocks, total, len(sizes))
	}

	// A lone block in parts and a lone block in one piece are deleted whole.
	if n, _, err := s.Delete(ctx, []multihash.Multihash{cids[3].Hash(), cids[1].Hash()}); err != nil || n != 2 {
		t.Fatalf("Delete = %d %v", n, err)
	}
	total -= wantParts[3] + wantParts[1]
	if keys, _ := dataKeys(t, s); keys != total {
		t.Fatalf("%d data keys after delete, want %d", keys, total)
	}
	if err := s.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	if got := checkConsistent(t, s); got != len(sizes)-2 {
		t.Fatalf("%d blocks after delete, want %d", got, len(sizes)-2)
	}

	// The same block written by two batches at once is kept once.
	c, data := testBlock(t, 100, 1<<20)
	b1, b2 := s.NewBatch(), s.NewBatch()
	for _, bb := range []*Batch{b1, b2} {
		if err := bb.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	for _, bb := range []*Batch{b1, b2} {
		if err := bb.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		bb.Close()
	}
	total += 4
	if keys, _ := dataKeys(t, s); keys != total {
		t.Fatalf("%d data keys after a double write, want %d", keys, total)
	}

	// A block in one 1 MiB value (as written before parts) still reads.
	old, odata := testBlock(t, 200, 1<<20)
	seq := s.nextBase.Add(fileSpan) - fileSpan
	var kb [80]byte
	if err := s.db.Set(dataKey(seq), odata, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(indexKey(kb[:], old.Hash()), refValue(nil, seq, len(odata), 0), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if got, err := getBytes(ctx, s, old); err != nil || !bytes.Equal(got, odata) {
		t.Fatalf("Get of a one-value block: %v", err)
	}

	// A missing or a short part is an error, not wrong bytes.
	e, _, err := s.lookup(cids[4].Hash())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(partKey(e.seq, 2), []byte("short"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := getBytes(ctx, s, cids[4]); err == nil || !strings.Contains(err.Error(), "stored part 2 is 5 bytes") {
		t.Fatalf("Get with a short part: %v", err)
	}
	if err := s.db.Delete(partKey(e.seq, 2), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := getBytes(ctx, s, cids[4]); err == nil || !strings.Contains(err.Error(), "missing data") {
		t.Fatalf("Get with a missing part: %v", err)
	}
}

// getBytes returns the bytes of block c, as Get gives them.
func getBytes(ctx context.Context, s *Store, c cid.Cid) ([]byte, error) {
	b, err := s.Get(ctx, c)
	return b.Data, err
}

// TestBatchAssumeMissing: a batch that does not look blocks up before
// storing them still stores a block that is already there once, in
// both of its paths (inline, and sstables whose ingest drops the copy).
func TestBatchAssumeMissing(t *testing.T) {
	ctx := context.Background()
	for _, sizes := range [][]int{{10, 1000}, {100 << 10, 300 << 10, 1 << 20, 5}} {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			s := openTest(t, t.TempDir(), smallFiles)
			defer s.Close()
			var total int64
			for i, size := range sizes {
				c, data := testBlock(t, uint64(i), size)
				if err := s.Put(ctx, c, data); err != nil {
					t.Fatal(err)
				}
				total += int64(size)
			}
			b := s.NewBatch()
			b.SetAssumeMissing(true)
			for i, size := range sizes { // all of them stored already
				c, data := testBlock(t, uint64(i), size)
				if err := b.Put(ctx, c, data); err != nil {
					t.Fatal(err)
				}
			}
			c, data := testBlock(t, 99, 2000) // and one new
			if err := b.Put(ctx, c, data); err != nil {
				t.Fatal(err)
			}
			if err := b.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			b.Close()
			st, err := s.Stat(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Blocks != len(sizes)+1 || st.Bytes != total+2000 {
				t.Fatalf("Stat = %+v, want %d blocks, %d bytes", st, len(sizes)+1, total+2000)
			}
			if n := checkConsistent(t, s); n != len(sizes)+1 {
				t.Fatalf("%d blocks consistent, want %d", n, len(sizes)+1)
			}
		})
	}
}

// TestBatchTracksOnlyUnindexed: a long batch remembers the blocks it has
// Put only until their file is ingested (then the store's index answers),
// so its memory is bounded by the file size, not by the blocks since the
// last Commit; and a block Put again after its file was ingested is still
// stored once.
func TestBatchTracksOnlyUnindexed(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), smallFiles)
	defer s.Close()
	b := s.NewBatch()
	defer b.Close()
	const n, size = 3000, 4 << 10 // 12 MB: a dozen files of 256 blocks
	data := make([]byte, size)
	most := 0
	for i := range n {
		fillRandom(data)
		binary.BigEndian.PutUint64(data, uint64(i))
		if err := b.Put(ctx, fakeCID(uint64(i)), data); err != nil {
			t.Fatal(err)
		}
		most = max(most, len(b.seen)+len(b.ingesting))
	}
	// Two files of 256 blocks at most: the one written, the one ingested.
	if limit := 2 * (int(smallFiles.FileSize)/size + 1); most > limit {
		t.Errorf("the batch tracked %d blocks at once, want at most %d", most, limit)
	}
	for i := range 300 { // again, from files long ingested
		if err := b.Put(ctx, fakeCID(uint64(i)), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, blocks := dataKeys(t, s); blocks != n {
		t.Errorf("%d blocks stored, want %d", blocks, n)
	}
}
