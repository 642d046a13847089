package blockstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	sstblock "github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/internal/drop"
)

// Batch writes many blocks efficiently. Nothing is durable until Commit; a
// Batch can go on being used after Commit and must be closed. A Batch is not
// safe for concurrent use; use one per goroutine.
//
// Below Options.SmallBatch bytes between commits the blocks are kept in
// memory and committed inline through Pebble's WAL. Above it they are written
// into sstables of Options.FileSize that are ingested in the background
// (the next file is written meanwhile), and the index entries of a file are
// written, synced, once its ingest is durable.
type Batch struct {
	s *Store
	// seen holds the multihashes of the blocks Put into pending or cur,
	// ingesting those of the file ingested in the background: the blocks
	// a lookup of the store does not see yet. Once a file is ingested its
	// set is cleared, so a batch of millions of blocks tracks one or two
	// files' worth, not every block since the last Commit.
	seen, ingesting map[string]struct{}
	pending         []block // small-batch blocks (copies)
	pendBy          int
	bulk            bool     // switched to sstables since the last Commit
	cur             *sstFile // sstable being written
	bg              chan ingestResult
	// chk: the lookups of the blocks in pending and cur (see checked)
	chk      checked
	err      error // sticky background error
	closed   bool
	fileSize int64 // 0: Options.FileSize
	// dropBehind: keep the sstables out of the page cache (SetDropBehind)
	dropBehind bool
	// assumeMissing: Put does not look the block up (SetAssumeMissing)
	assumeMissing bool
	every         time.Duration    // SetCheckpointEvery; 0: by size only
	now           func() time.Time // clock (tests)
	pendStart     time.Time        // when the first pending block came
}

// NewBatch returns a Batch writing into s.
func (s *Store) NewBatch() *Batch {
	return &Batch{s: s, seen: make(map[string]struct{}), ingesting: make(map[string]struct{})}
}

// Put adds a block; data may be reused by the caller on return. Blocks
// already stored, or already Put into this batch, are skipped. The block is
// not durable until Commit.
func (b *Batch) Put(ctx context.Context, c cid.Cid, data []byte) error {
	if b.closed {
		return errors.New("blockstore: Put on closed batch")
	}
	if b.err != nil {
		return b.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	mh := c.Hash()
	if b.putBefore(mh) {
		return nil
	}
	var gen uint64
	if !b.assumeMissing {
		gen = b.s.added.Load() // before the lookup: see Store.added
		ok, err := b.s.has(mh)
		if err != nil {
			return fmt.Errorf("block %s: %w", c, err)
		}
		if ok {
			return nil
		}
	}
	if err := b.s.checkSpace(len(data)); err != nil {
		return fmt.Errorf("block %s: %w", c, err)
	}
	b.seen[string(mh)] = struct{}{}
	b.looked(gen)
	stale := b.every > 0 && len(b.pending) > 0 && b.clock().Sub(b.pendStart) >= b.every
	small := !b.bulk && b.pendBy+len(data) <= b.s.opts.SmallBatch && !stale
	if small || innerNode(c, data) {
		if len(b.pending) == 0 {
			b.pendStart = b.clock()
		}
		b.pending = append(b.pending, block{mh: mh, data: bytes.Clone(data)})
		b.pendBy += len(data)
		return nil
	}
	b.bulk = true
	if b.cur == nil {
		if err := b.startFile(); err != nil {
			return err
		}
	}
	if err := b.cur.add(mh, data); err != nil {
		b.err = fmt.Errorf("blockstore: write sstable: %w", err)
		return b.err
	}
	size := b.fileSize
	if size == 0 {
		size = b.s.opts.FileSize
	}
	due := b.every > 0 && b.clock().Sub(b.cur.started) >= b.every && b.idle()
	if b.cur.bytes >= size || b.cur.n >= fileSpan-1 || due {
		if err := b.wait(ctx); err != nil {
			return err
		}
		f := b.cur
		b.cur = nil
		b.seen, b.ingesting = b.ingesting, b.seen // ingesting was cleared by wait
		for _, bl := range b.pending {
			// Inner nodes held inline are not in f: the next file or
			// the Commit writes them, so they stay tracked till then.
			b.seen[string(bl.mh)] = struct{}{}
		}
		f.chk = b.chk
		b.bg = make(chan ingestResult, 1)
		go func(ch chan ingestResult) {
			chk, err := b.s.ingest(context.Background(), f)
			ch <- ingestResult{from: f.chk, chk: chk, err: err}
		}(b.bg)
	}
	return nil
}

// ingestResult is the outcome of a background ingest of a file whose
// lookups were from.
type ingestResult struct {
	from, chk checked
	err       error
}

// looked records the lookup, begun at generation gen, of a block about to
// join pending or cur (none under SetAssumeMissing). The oldest lookup
// of the unwritten blocks is the one that must still hold.
func (b *Batch) looked(gen uint64) {
	if len(b.pending) == 0 && b.cur == nil {
		b.chk = checked{gen: gen, ok: !b.assumeMissing}
	} else if b.assumeMissing {
		b.chk.ok = false
	}
}

// maxInlineNode is the largest dag-pb node a Batch stores inline in its
// index entry even among bulk data.
const maxInlineNode = 16 << 10

// innerNode reports whether c is a DAG's inner node (or a directory) small
// enough to live inline in the index. gc's mark reads every inner node of
// every pin: inline, they are read in index order with the index entries,
// where in the sstables of bulk data each one cost a random read (a
// million blocks under 100 000 pins: 3.7 of gc's 6 CPU-seconds).
func innerNode(c cid.Cid, data []byte) bool {
	return c.Type() == cid.DagProtobuf && len(data) <= maxInlineNode
}

// putBefore reports whether the block mh was Put into this batch and is not
// visible in the store yet.
func (b *Batch) putBefore(mh []byte) bool {
	if _, ok := b.seen[string(mh)]; ok {
		return true
	}
	_, ok := b.ingesting[string(mh)]
	return ok
}

// SetFileSize sets the size at which this batch finishes an sstable and
// ingests it in the background (default Options.FileSize). Each ingested
// file is durable and visible without waiting for Commit, so a long batch
// that is abandoned keeps every finished file: a checkpoint that costs the
// writer nothing.
func (b *Batch) SetFileSize(n int64) {
	if n > 0 {
		b.fileSize = n
	}
}

// SetCheckpointEvery makes the batch also finish and ingest its sstable
// once it has been open for d, if the previous one is ingested by then: a
// slow transfer that is killed loses about d of work, not a whole file.
func (b *Batch) SetCheckpointEvery(d time.Duration) { b.every = d }

func (b *Batch) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

// idle reports, without waiting, whether no ingest is running.
func (b *Batch) idle() bool {
	if b.bg == nil {
		return true
	}
	select {
	case r := <-b.bg:
		b.ingested(r)
		return true
	default:
		return false
	}
}

// ingested takes the result of the background ingest. If the lookups
// of the blocks still unwritten were as old as the ingested file's and it
// found them still holding, they hold after it too: it added only this
// batch's own blocks.
func (b *Batch) ingested(r ingestResult) {
	b.bg = nil
	clear(b.ingesting) // visible to has now (or the batch failed)
	if r.err != nil && b.err == nil {
		b.err = r.err
	}
	if r.chk.ok && b.chk.ok && b.chk.gen == r.from.gen {
		b.chk.gen = r.chk.gen
	}
}

// SetAssumeMissing makes Put skip its lookup of whether a block is
// already stored, for a caller that has just looked (a fetch session asks
// the store before it requests a block): for small blocks that lookup is
// a sixth of a fetching node's CPU time. A block stored meanwhile by
// someone else is still stored once: Commit, and the ingest of each
// finished sstable, index a block only if it is not stored yet, and drop
// the copy otherwise.
func (b *Batch) SetAssumeMissing(on bool) { b.assumeMissing = on }

// SetDropBehind makes the batch write its sstables through to the disk
// and drop them from the page cache as it goes (see internal/drop), for
// blocks that are stored for later rather than read now: fetched ones.
// Small batches committed through the WAL are unaffected.
func (b *Batch) SetDropBehind(on bool) { b.dropBehind = on }

// startFile opens a new sstable and moves the pending blocks into it.
func (b *Batch) startFile() error {
	f, err := b.s.newSSTFile(b.dropBehind)
	if err != nil {
		b.err = err
		return err
	}
	b.cur = f
	f.started = b.clock()
	if len(b.pending) > 0 {
		f.started = b.pendStart // held in memory since then
	}
	for _, bl := range b.pending {
		if err := f.add(bl.mh, bl.data); err != nil {
			b.err = fmt.Errorf("blockstore: write sstable: %w", err)
			return b.err
		}
	}
	b.pending, b.pendBy = nil, 0
	return nil
}

// wait waits for the background ingest, if any.
func (b *Batch) wait(ctx context.Context) error {
	if b.bg == nil {
		return b.err
	}
	select {
	case r := <-b.bg:
		b.ingested(r)
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Commit makes every block Put so far durable and visible. The batch can be
// used again afterwards.
func (b *Batch) Commit(ctx context.Context) error {
	if b.closed {
		return errors.New("blockstore: Commit on closed batch")
	}
	if err := b.wait(ctx); err != nil {
		return err
	}
	if f := b.cur; f != nil {
		b.cur = nil
		f.chk = b.chk
		chk, err := b.s.ingest(ctx, f)
		if err != nil {
			b.err = err
			return err
		}
		b.chk = chk // the pending blocks' lookups (see ingested)
	}
	if len(b.pending) > 0 {
		if _, err := b.s.putInline(b.pending, b.chk); err != nil {
			b.err = fmt.Errorf("blockstore: commit: %w", err)
			return b.err
		}
	}
	b.pending, b.pendBy, b.bulk = nil, 0, false
	b.chk = checked{}
	clear(b.seen)
	return nil
}

// Close abandons uncommitted blocks (some of them may have been stored
// anyway) and releases the batch.
func (b *Batch) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.bg != nil {
		<-b.bg
		b.bg = nil
	}
	if b.cur != nil {
		b.cur.abort()
		b.cur = nil
	}
	b.pending, b.seen, b.ingesting = nil, nil, nil
	return nil
}

// sstFile is an sstable being written into the staging directory.
type sstFile struct {
	path    string
	w       *sstable.Writer
	out     *syncWriter
	base    uint64 // sequence number of the first block
	n       uint64 // blocks written
	bytes   int64
	entries []fileEntry
	started time.Time
	// dropAfter: drop the whole file from the page cache once ingested
	dropAfter bool
	chk       checked // the lookups of its blocks
}

type fileEntry struct {
	mh   []byte
	size int
	part int // part size, 0: one value
}

var writerOpts = sstable.WriterOptions{
	BlockSize:          64 << 10,
	BlockSizeThreshold: 90,
	IndexBlockSize:     256 << 10,
	Compression:        sstblock.NoCompression,
	TableFormat:        sstable.TableFormatPebblev4,
	Checksum:           sstblock.ChecksumTypeCRC32c,
	DisableValueBlocks: true,
}

func (s *Store) newSSTFile(dropBehind bool) (*sstFile, error) {
	base := s.nextBase.Add(fileSpan) - fileSpan
	path := filepath.Join(s.staging, strconv.FormatUint(s.stagingN.Add(1), 10)+".sst")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blockstore: %w", err)
	}
	out := &syncWriter{f: f, w: drop.NewWriteback(f)}
	if dropBehind {
		// Ingest reads the first and the last data block of the file
		// to learn its bounds: keep the first chunk (the tail is never
		// dropped while writing) and drop the rest after the ingest,
		// instead of reading two blocks back from the disk.
		out.w = drop.NewFrom(f, drop.Chunk)
	}
	return &sstFile{path: path, out: out, w: sstable.NewWriter(out, writerOpts), base: base, dropAfter: dropBehind}, nil
}

func (f *sstFile) add(mh, data []byte) error {
	seq := f.base + f.n
	part := 0
	if len(data) > partSize {
		part = partSize
		if (len(data)+part-1)/part > maxParts {
			return fmt.Errorf("block of %d bytes is too large", len(data))
		}
	}
	e := entry{size: len(data), part: part}
	for i := range e.parts() {
		off := i * part
		if err := f.w.Set(partKey(seq, i), data[off:off+e.partLen(i)]); err != nil {
			return err
		}
	}
	f.n++
	f.bytes += int64(len(data))
	f.entries = append(f.entries, fileEntry{mh: mh, size: len(data), part: part})
	return nil
}

func (f *sstFile) abort() {
	f.w.Close()
	os.Remove(f.path)
}

// ingest finishes f (fsync), ingests it and writes its index entries,
// looking each block up first unless f's lookups still hold (see
// Store.fresh). It returns the lookups that hold for the same writer's
// blocks after it (see Store.indexed).
func (s *Store) ingest(ctx context.Context, f *sstFile) (checked, error) {
	defer os.Remove(f.path)
	if err := f.w.Close(); err != nil {
		return checked{}, fmt.Errorf("blockstore: finish sstable: %w", err)
	}
	// Until the index is written, a journal entry names the data range, so
	// that Open deletes it if we die in between.
	jk := make([]byte, 9)
	jk[0] = prefixJournal
	binary.BigEndian.PutUint64(jk[1:], f.base)
	if err := s.db.Set(jk, binary.BigEndian.AppendUint64(nil, f.base+f.n), pebble.Sync); err != nil {
		return checked{}, fmt.Errorf("blockstore: journal: %w", err)
	}
	if f.dropAfter {
		// Ingest moves the file into the database: hold it open to drop
		// its pages afterwards.
		if fd, err := os.Open(f.path); err == nil {
			defer fd.Close()
			defer drop.All(fd)
		}
	}
	if err := s.db.Ingest(ctx, []string{f.path}); err != nil {
		_ = s.db.Delete(jk, pebble.NoSync)
		return checked{}, fmt.Errorf("blockstore: ingest: %w", err)
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	skip := s.fresh(f.chk)
	b := s.db.NewBatch()
	defer b.Close()
	var kb [80]byte
	var vb [32]byte
	var d counts
	for i, e := range f.entries {
		seq := f.base + uint64(i)
		if !skip {
			ok, err := s.has(e.mh)
			if err != nil {
				return checked{}, err
			}
			if ok { // stored meanwhile by someone else: drop our copy
				if err := deleteData(b, seq, e.part > 0); err != nil {
					return checked{}, err
				}
				continue
			}
		}
		s.filterAdd(e.mh)
		if err := b.Set(indexKey(kb[:], e.mh), refValue(vb[:], seq, e.size, e.part), nil); err != nil {
			return checked{}, err
		}
		d.blocks++
		d.bytes += int64(e.size)
	}
	if err := b.Delete(jk, nil); err != nil {
		return checked{}, err
	}
	if err := s.addCount(b, d); err != nil {
		return checked{}, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return checked{}, fmt.Errorf("blockstore: index: %w", err)
	}
	s.committedCount(d)
	return s.indexed(skip), nil
}

// syncWriter writes an sstable straight to its file through a
// drop.Writer: writeback starts every few MiB, so the final fsync has
// little left to do, and with drop-behind (fetched blocks, cached for
// later rather than read at once) the written pages also leave the page
// cache as it goes, so many GiB do not evict the machine's cache.
type syncWriter struct {
	f *os.File
	w *drop.Writer
}

func (w *syncWriter) Write(p []byte) error {
	_, err := w.w.Write(p)
	return err
}

func (w *syncWriter) Finish() error {
	if err := w.w.Close(); err != nil {
		w.f.Close()
		return err
	}
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *syncWriter) Abort() {
	w.w.Close()
	w.f.Close()
}
