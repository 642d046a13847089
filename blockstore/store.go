package blockstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"golang.org/x/sys/unix"
)

// ErrNotFound is returned (wrapped with the CID or key) when a block or a
// metadata key is missing.
var ErrNotFound = errors.New("block not found")

// ErrLocked is returned (wrapped) by Open when another process, or another
// Store in this process, holds the repository.
var ErrLocked = errors.New("repository is in use by another process")

// Key prefixes. See the package documentation.
const (
	prefixIndex   = 'b'
	prefixData    = 'd'
	prefixJournal = 'j'

	reservedFirst = 'b'
	reservedLast  = 'j'
)

// Index entry kinds (first byte of an index value).
const (
	kindInline = 0
	kindRef    = 1
)

// fileSpan is the range of sequence numbers reserved for one sstable; it
// keeps the keys of concurrently written sstables from interleaving, so every
// ingested file lands in the bottom level.
const fileSpan = 1 << 24

// Options tunes a Store. The zero value gives good defaults.
type Options struct {
	// CacheSize is Pebble's block cache in bytes (default 32 MiB). Large
	// blocks pass through it on reads, so a few dozen MiB is enough.
	CacheSize int64
	// MemTableSize is the size of one Pebble memtable (default 8 MiB). It
	// holds the index, inline blocks and metadata, never bulk data.
	MemTableSize uint64
	// SmallBatch is the number of bytes a Batch keeps in memory before it
	// switches to writing an sstable (default 4 MiB). A Batch committed
	// below it stores its blocks inline through Pebble's WAL.
	SmallBatch int
	// FileSize is the size at which a Batch finishes its current sstable and
	// ingests it in the background while it writes the next (default 128 MiB).
	FileSize int64
	// Logger receives Pebble's error messages (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.CacheSize <= 0 {
		r.CacheSize = 32 << 20
	}
	if r.MemTableSize == 0 {
		r.MemTableSize = 8 << 20
	}
	if r.SmallBatch <= 0 {
		r.SmallBatch = 4 << 20
	}
	if r.FileSize <= 0 {
		r.FileSize = 128 << 20
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r
}

// Store is a block store backed by Pebble. It is safe for concurrent use.
type Store struct {
	db      *pebble.DB
	dir     string
	staging string
	opts    Options
	lock    *os.File

	nextBase atomic.Uint64 // first sequence number of the next sstable
	stagingN atomic.Uint64 // names staging files

	// indexMu serialises writers of the index, so that the check "is this
	// multihash already stored?" and the write that follows are atomic.
	indexMu sync.Mutex

	recovered int // journal entries handled at Open (for tests)

	spansMu sync.Mutex
	spans   []span // data ranges deleted since the last Reclaim

	// readOnly: opened on a full disk (see Open); every write fails.
	readOnly bool

	// free space, as last seen by checkSpace
	spaceMu   sync.Mutex
	spaceAt   time.Time
	spaceFree int64
	spaceUsed int64 // bytes written since spaceAt
}

type span struct{ start, end uint64 } // [start, end) of sequence numbers

// pebbleLogger passes Pebble's errors on, at most one a second: at ENOSPC
// Pebble retries a failing flush thousands of times a second.
type pebbleLogger struct {
	l          *slog.Logger
	mu         *sync.Mutex
	last       *time.Time
	suppressed *int
}

func newPebbleLogger(l *slog.Logger) pebbleLogger {
	return pebbleLogger{l: l, mu: new(sync.Mutex), last: new(time.Time), suppressed: new(int)}
}

func (pebbleLogger) Infof(string, ...any) {}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.mu.Lock()
	if time.Since(*p.last) < time.Second {
		*p.suppressed++
		p.mu.Unlock()
		return
	}
	n := *p.suppressed
	*p.last, *p.suppressed = time.Now(), 0
	p.mu.Unlock()
	p.l.Error("pebble: "+fmt.Sprintf(format, args...), "suppressed", n)
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}

// Open opens the block store in dir, creating it if missing. It returns an
// error wrapping ErrLocked if the repository is held by another Store.
func Open(dir string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blockstore: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, staging: filepath.Join(dir, "ingest"), opts: o, lock: lock}
	// Files left in staging by a killed process were never ingested.
	if err := os.RemoveAll(s.staging); err != nil {
		lock.Close()
		return nil, fmt.Errorf("blockstore: %w", err)
	}
	if err := os.MkdirAll(s.staging, 0o755); err != nil {
		lock.Close()
		return nil, fmt.Errorf("blockstore: %w", err)
	}

	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:              cache,
		MemTableSize:       o.MemTableSize,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             newPebbleLogger(o.Logger),
		FS:                 rawReadFS{vfs.Default},
	}
	// On a full disk Pebble cannot flush what it replays from its WAL and
	// would retry forever: open read-only instead, so that reading,
	// verifying and listing work and every write says the disk is full.
	if free, ok := freeSpace(dir); ok && free < minOpenFree {
		popts.ReadOnly = true
		s.readOnly = true
		o.Logger.Debug("the disk is full: the repository is open read-only until space is freed", "dir", dir, "free", free)
	}
	// Blocks are hashes and (mostly) compressed media: compression would
	// only cost CPU when compactions rewrite them.
	popts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	popts.EnsureDefaults()
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("blockstore: open %s: %w", dir, err)
	}
	s.db = db
	if s.readOnly {
		return s, nil // recovery writes; it runs at the next open with space
	}
	if err := s.recover(); err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("blockstore: open %s: %w", dir, err)
	}
	return s, nil
}

// lockDir takes an exclusive flock on dir/share.lock. flock locks belong to
// the open file, so a second Open in the same process fails too.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "share.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blockstore: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("blockstore: %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("blockstore: lock %s: %w", dir, err)
	}
	return f, nil
}

// recover removes the data of sstables whose index was never written (the
// process died between ingest and index write) and finds the next free
// sequence number.
func (s *Store) recover() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixJournal}, UpperBound: []byte{prefixJournal + 1}})
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	var maxEnd uint64
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 9 || len(v) != 8 {
			it.Close()
			return fmt.Errorf("bad journal entry %x", k)
		}
		start, end := binary.BigEndian.Uint64(k[1:]), binary.BigEndian.Uint64(v)
		maxEnd = max(maxEnd, end)
		s.recovered++
		if err := b.DeleteRange(dataKey(start), dataKey(end), nil); err != nil {
			it.Close()
			return err
		}
		if err := b.Delete(slices.Clone(k), nil); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	if !b.Empty() {
		if err := b.Commit(pebble.Sync); err != nil {
			return err
		}
	}
	b.Close()

	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixData}, UpperBound: []byte{prefixData + 1}})
	if err != nil {
		return err
	}
	if it.Last() {
		k := it.Key()
		if len(k) != 9 {
			it.Close()
			return fmt.Errorf("bad data key %x", k)
		}
		maxEnd = max(maxEnd, binary.BigEndian.Uint64(k[1:])+1)
	}
	if err := it.Close(); err != nil {
		return err
	}
	s.nextBase.Store((maxEnd + fileSpan - 1) / fileSpan * fileSpan)
	return nil
}

// Close closes the database. Batches must be closed first.
func (s *Store) Close() error {
	err := s.db.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

func indexKey(buf []byte, mh []byte) []byte {
	buf = append(buf[:0], prefixIndex)
	return append(buf, mh...)
}

func dataKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixData
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func refValue(buf []byte, seq uint64, size int) []byte {
	buf = append(buf[:0], kindRef)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	return binary.AppendUvarint(buf, uint64(size))
}

func inlineValue(data []byte) []byte {
	v := make([]byte, 1+len(data))
	v[0] = kindInline
	copy(v[1:], data)
	return v
}

// entry is a decoded index value.
type entry struct {
	inline []byte // the bytes of an inline block
	seq    uint64 // the data key of an ingested block
	size   int
	ref    bool
}

func parseEntry(v []byte) (entry, error) {
	if len(v) == 0 {
		return entry{}, errors.New("empty index entry")
	}
	switch v[0] {
	case kindInline:
		return entry{inline: v[1:], size: len(v) - 1}, nil
	case kindRef:
		if len(v) < 10 {
			return entry{}, errors.New("short index entry")
		}
		size, n := binary.Uvarint(v[9:])
		if n <= 0 || 9+n != len(v) {
			return entry{}, errors.New("bad index entry size")
		}
		return entry{seq: binary.BigEndian.Uint64(v[1:9]), size: int(size), ref: true}, nil
	}
	return entry{}, fmt.Errorf("unknown index entry kind %d", v[0])
}

// lookup reads the index entry of mh; inline bytes are copied.
func (s *Store) lookup(mh []byte) (entry, bool, error) {
	var kb [80]byte
	v, closer, err := s.db.Get(indexKey(kb[:], mh))
	if errors.Is(err, pebble.ErrNotFound) {
		return entry{}, false, nil
	}
	if err != nil {
		return entry{}, false, err
	}
	defer closer.Close()
	e, err := parseEntry(v)
	if err != nil {
		return entry{}, false, fmt.Errorf("multihash %x: %w", mh, err)
	}
	if e.inline != nil {
		e.inline = bytes.Clone(e.inline)
	}
	return e, true, nil
}

func (s *Store) has(mh []byte) (bool, error) {
	var kb [80]byte
	_, closer, err := s.db.Get(indexKey(kb[:], mh))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// Get returns a copy of the block's bytes.
func (s *Store) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	var out []byte
	err := s.View(ctx, c, func(data []byte) error {
		out = make([]byte, len(data))
		copy(out, data)
		return nil
	})
	return out, err
}

// GetAppend appends the block's bytes to dst and returns the extended slice.
// With a dst of enough capacity (a pooled buffer) it does not allocate.
func (s *Store) GetAppend(ctx context.Context, dst []byte, c cid.Cid) ([]byte, error) {
	err := s.View(ctx, c, func(data []byte) error {
		dst = append(dst, data...)
		return nil
	})
	return dst, err
}

// View calls fn with the block's bytes without copying them. data is valid
// only during the call and must not be modified. fn's error is returned.
func (s *Store) View(ctx context.Context, c cid.Cid, fn func(data []byte) error) error {
	data, release, err := s.Borrow(ctx, c)
	if err != nil {
		return err
	}
	defer release()
	return fn(data)
}

// Borrow returns the block's bytes without copying them, straight from
// Pebble's block cache, and a release function that the caller must call
// exactly once when done; until then data stays valid (and must not be
// modified), and it holds its share of the cache. Serving peers uses it to
// send blocks without a copy.
func (s *Store) Borrow(ctx context.Context, c cid.Cid) (data []byte, release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	mh := c.Hash()
	var kb [80]byte
	for range 3 {
		v, closer, err := s.db.Get(indexKey(kb[:], mh))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, nil, fmt.Errorf("block %s: %w", c, ErrNotFound)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("block %s: %w", c, err)
		}
		e, err := parseEntry(v)
		if err != nil {
			closer.Close()
			return nil, nil, fmt.Errorf("block %s: %w", c, err)
		}
		if !e.ref {
			return e.inline, func() { closer.Close() }, nil
		}
		closer.Close()
		v, closer, err = s.db.Get(dataKey(e.seq))
		if errors.Is(err, pebble.ErrNotFound) {
			continue // deleted between the two reads? look again
		}
		if err != nil {
			return nil, nil, fmt.Errorf("block %s: %w", c, err)
		}
		if len(v) != e.size {
			closer.Close()
			return nil, nil, fmt.Errorf("block %s: stored size %d, index says %d", c, len(v), e.size)
		}
		return v, func() { closer.Close() }, nil
	}
	return nil, nil, fmt.Errorf("block %s: index points at missing data", c)
}

// Has reports whether the block is stored.
func (s *Store) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ok, err := s.has(c.Hash())
	if err != nil {
		return false, fmt.Errorf("block %s: %w", c, err)
	}
	return ok, nil
}

// Size returns the length of the block's bytes.
func (s *Store) Size(ctx context.Context, c cid.Cid) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	e, ok, err := s.lookup(c.Hash())
	if err != nil {
		return 0, fmt.Errorf("block %s: %w", c, err)
	}
	if !ok {
		return 0, fmt.Errorf("block %s: %w", c, ErrNotFound)
	}
	return e.size, nil
}

// Put stores one block durably (synced on return). It does nothing if the
// block is already stored. For many blocks use a Batch.
func (s *Store) Put(ctx context.Context, c cid.Cid, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkSpace(len(data)); err != nil {
		return fmt.Errorf("block %s: %w", c, err)
	}
	if err := s.putInline([]block{{mh: c.Hash(), data: data}}); err != nil {
		return fmt.Errorf("block %s: %w", c, err)
	}
	return nil
}

type block struct {
	mh   []byte
	data []byte
}

// putInline stores blocks inline in their index entries with one synced
// write, skipping those already stored.
func (s *Store) putInline(blocks []block) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	var kb [80]byte
	for _, bl := range blocks {
		ok, err := s.has(bl.mh)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if err := b.Set(indexKey(kb[:], bl.mh), inlineValue(bl.data), nil); err != nil {
			return err
		}
	}
	if b.Empty() {
		return nil
	}
	return b.Commit(pebble.Sync)
}

// Delete removes the blocks with the given multihashes (missing ones are
// skipped) and reports how many blocks and bytes it removed. Disk space comes
// back after Reclaim (or, later, by Pebble's own compactions).
func (s *Store) Delete(ctx context.Context, mhs []multihash.Multihash) (freedBlocks int, freedBytes int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if err := s.writable(); err != nil {
		return 0, 0, err
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	var seqs []uint64
	var kb [80]byte
	for _, mh := range mhs {
		e, ok, err := s.lookup(mh)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			continue
		}
		if err := b.Delete(indexKey(kb[:], mh), nil); err != nil {
			return 0, 0, err
		}
		if e.ref {
			seqs = append(seqs, e.seq)
		}
		freedBlocks++
		freedBytes += int64(e.size)
	}
	slices.Sort(seqs)
	var runs []span
	for i := 0; i < len(seqs); {
		j := i + 1
		for j < len(seqs) && seqs[j] == seqs[j-1]+1 {
			j++
		}
		r := span{seqs[i], seqs[j-1] + 1}
		if j-i == 1 {
			err = b.Delete(dataKey(r.start), nil)
		} else {
			err = b.DeleteRange(dataKey(r.start), dataKey(r.end), nil)
		}
		if err != nil {
			return 0, 0, err
		}
		runs = append(runs, r)
		i = j
	}
	if b.Empty() {
		return 0, 0, nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, 0, fmt.Errorf("blockstore: delete: %w", err)
	}
	s.spansMu.Lock()
	s.spans = append(s.spans, runs...)
	s.spansMu.Unlock()
	return freedBlocks, freedBytes, nil
}

// Reclaim makes Pebble give back the disk space of blocks removed by Delete
// since the store was opened. Long runs of deleted blocks are excised, which
// drops the sstables they cover without reading them; scattered deletes are
// compacted, which rewrites the live blocks around them. Space freed by
// deletes before a restart comes back through Pebble's own compactions.
func (s *Store) Reclaim(ctx context.Context) error {
	s.spansMu.Lock()
	spans := mergeSpans(s.spans)
	s.spans = nil
	s.spansMu.Unlock()
	var scattered []span
	for i, sp := range spans {
		if sp.end-sp.start < minExciseRun {
			scattered = append(scattered, sp)
			continue
		}
		if err := s.db.Excise(ctx, pebble.KeyRange{Start: dataKey(sp.start), End: dataKey(sp.end)}); err != nil {
			s.requeue(append(scattered, spans[i:]...))
			return fmt.Errorf("blockstore: reclaim: %w", err)
		}
	}
	// Compact scattered deletes, grouping those in neighbouring sstables.
	for i := 0; i < len(scattered); {
		j := i + 1
		for j < len(scattered) && scattered[j].start-scattered[j-1].end < 2*fileSpan {
			j++
		}
		if err := s.db.Compact(ctx, dataKey(scattered[i].start), dataKey(scattered[j-1].end), true); err != nil {
			s.requeue(scattered[i:])
			return fmt.Errorf("blockstore: reclaim: %w", err)
		}
		i = j
	}
	return nil
}

// minExciseRun is the shortest run of deleted blocks that Reclaim excises.
// Excising a short run inside an sstable would only split it into virtual
// sstables that keep the whole file on disk.
const minExciseRun = 16

func (s *Store) requeue(spans []span) {
	s.spansMu.Lock()
	s.spans = append(s.spans, spans...)
	s.spansMu.Unlock()
}

func mergeSpans(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	var out []span
	for _, sp := range spans {
		if n := len(out); n > 0 && sp.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// ForEach calls fn for every stored block, in multihash order. mh is the
// caller's to keep. It stops at the first error fn returns.
func (s *Store) ForEach(ctx context.Context, fn func(mh multihash.Multihash, size int) error) error {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{prefixIndex}, UpperBound: []byte{prefixIndex + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			it.Close()
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		e, err := parseEntry(v)
		if err != nil {
			it.Close()
			return fmt.Errorf("blockstore: index key %x: %w", it.Key(), err)
		}
		if err := fn(multihash.Multihash(slices.Clone(it.Key()[1:])), e.size); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// Stat describes the store.
type Stat struct {
	Blocks    int    // number of stored blocks
	Bytes     int64  // sum of their sizes
	DiskUsage uint64 // bytes the database takes on disk
}

// Stat counts the blocks (a scan of the index) and reports Pebble's disk use.
func (s *Store) Stat(ctx context.Context) (Stat, error) {
	var st Stat
	err := s.ForEach(ctx, func(_ multihash.Multihash, size int) error {
		st.Blocks++
		st.Bytes += int64(size)
		return nil
	})
	if err != nil {
		return Stat{}, err
	}
	st.DiskUsage = s.db.Metrics().DiskSpaceUsage()
	return st, nil
}
