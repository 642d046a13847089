package blockstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
)

// ErrLocked is returned (wrapped) by Open when another process, or another
// Store in this process, holds the repository.
var ErrLocked = errors.New("repository is in use by another process")

// Key prefixes. See the package documentation.
const (
	prefixIndex   = 'b'
	prefixCount   = 'c'
	prefixData    = 'd'
	prefixJournal = 'j'

	reservedFirst = 'b'
	reservedLast  = 'j'
)

// Index entry kinds (first byte of an index value).
const (
	kindInline = 0
	kindRef    = 1
	kindParts  = 2
)

// partSize is the size of the parts that a block larger than it is written
// in (the last part may be shorter). Pebble copies every value twice and
// checksums it while building an sstable block; a 1 MiB value makes a 1 MiB
// block that falls out of the CPU's cache between those passes, while
// 256 KiB blocks stay in it: writing 1 GiB of 1 MiB blocks takes half the
// CPU (BenchmarkSSTableParts).
const partSize = 256 << 10

// maxParts bounds the parts of one block (the part number is 16 bits).
const maxParts = 1<<16 - 1

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

	count counts // the index's figures (under indexMu)
	// added counts the commits that may have added index entries; see
	// checked. It is bumped under indexMu after the commit, so a
	// reader that loads it before a lookup knows that any write the
	// lookup missed bumps it past the loaded value.
	added    atomic.Uint64
	lookups  atomic.Uint64          // has calls (tests count them)
	countNow atomic.Pointer[counts] // a copy of count for Stat

	spansMu sync.Mutex
	spans   []span // data ranges deleted since the last Reclaim

	// readOnly: opened on a full disk (see Open); every write fails.
	readOnly bool

	// free space, as last seen by checkSpace
	spaceMu   sync.Mutex
	spaceAt   time.Time
	spaceFree int64
	spaceUsed int64 // bytes written since spaceAt

	filter missFilter // answers most lookups of missing blocks (filter.go)

	bufs    bufPool      // the buffers of the blocks Get returns
	release func([]byte) // bufs.put, made once: the blocks' release
}

type span struct{ start, end uint64 } // [start, end) of sequence numbers

var (
	_ share.Getter = (*Store)(nil)
	_ share.Putter = (*Store)(nil)
	_ share.Putter = (*Batch)(nil)
)

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

// corruptionListener sends Pebble's reports of damaged files to the debug
// log. Pebble's default is its logger's Fatalf: the process would end
// with a page of stack trace on stderr, where a damaged block should be
// one error that names it (see blockErr), for the caller to report.
func corruptionListener(l *slog.Logger) *pebble.EventListener {
	return &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
		l.Debug("pebble: on-disk corruption", "path", info.Path, "details", info.Details.Error())
	}}
}

// damaged is Pebble's error for bytes that fail their checksum, in one
// line: its own text spans lines and its chain carries stack traces.
// errors.Is(err, pebble.ErrCorruption) still holds.
type damaged struct{ err error }

func (d damaged) Error() string { return "damaged on disk (its checksum does not match)" }
func (d damaged) Unwrap() error { return d.err }

// blockErr is err, from reading block c, naming c; damaged bytes are of
// kind errs.Corrupt.
func blockErr(c cid.Cid, err error) error {
	if pebble.IsCorruptionError(err) {
		return errs.E(errs.Corrupt, c, fmt.Errorf("block %s: %w", c, damaged{err}))
	}
	return fmt.Errorf("block %s: %w", c, err)
}

// indexErr is err, from reading the index; damaged bytes are of kind
// errs.Corrupt (which blocks they held is not known).
func indexErr(err error) error {
	if pebble.IsCorruptionError(err) {
		return errs.E(errs.Corrupt, fmt.Errorf("blockstore: index: %w", damaged{err}))
	}
	return err
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
	s.release = s.bufs.put
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
		EventListener:      corruptionListener(o.Logger),
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
	if !s.readOnly { // recovery writes; it runs at the next open with space
		err = s.recover()
	}
	if err == nil {
		err = s.loadCount()
	}
	if err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("blockstore: open %s: %w", dir, err)
	}
	s.countNow.Store(&counts{s.count.blocks, s.count.bytes})
	s.filter.ctx, s.filter.cancel = context.WithCancel(context.Background())
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
		if len(k) != 9 && len(k) != 11 {
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
	s.stopFilter()
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

// partKey is the key of part i of the block at seq; part 0 is dataKey(seq),
// so a block of one part has the same key either way.
func partKey(seq uint64, i int) []byte {
	if i == 0 {
		return dataKey(seq)
	}
	k := make([]byte, 11)
	k[0] = prefixData
	binary.BigEndian.PutUint64(k[1:], seq)
	binary.BigEndian.PutUint16(k[9:], uint16(i))
	return k
}

// refValue is the index entry of an ingested block of size bytes at seq,
// written in parts of part bytes (0: one value).
func refValue(buf []byte, seq uint64, size, part int) []byte {
	kind := byte(kindRef)
	if part > 0 {
		kind = kindParts
	}
	buf = append(buf[:0], kind)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	buf = binary.AppendUvarint(buf, uint64(size))
	if part > 0 {
		buf = binary.AppendUvarint(buf, uint64(part))
	}
	return buf
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
	part   int // the part size of a block in parts; 0: one value
	ref    bool
}

// parts is the number of data keys of an ingested block.
func (e entry) parts() int {
	if e.part == 0 {
		return 1
	}
	return (e.size + e.part - 1) / e.part
}

// partLen is the length of part i.
func (e entry) partLen(i int) int {
	if e.part == 0 {
		return e.size
	}
	return min(e.part, e.size-i*e.part)
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
	case kindParts:
		if len(v) < 11 {
			return entry{}, errors.New("short index entry")
		}
		size, n := binary.Uvarint(v[9:])
		if n <= 0 {
			return entry{}, errors.New("bad index entry size")
		}
		part, m := binary.Uvarint(v[9+n:])
		if m <= 0 || 9+n+m != len(v) || part == 0 || size > uint64(maxParts)*part {
			return entry{}, errors.New("bad index entry part size")
		}
		return entry{seq: binary.BigEndian.Uint64(v[1:9]), size: int(size), part: int(part), ref: true}, nil
	}
	return entry{}, fmt.Errorf("unknown index entry kind %d", v[0])
}

// lookup reads the index entry of mh; inline bytes are copied.
func (s *Store) lookup(mh []byte) (entry, bool, error) {
	if !s.mayHave(mh) {
		return entry{}, false, nil
	}
	var kb [80]byte
	v, closer, err := s.db.Get(indexKey(kb[:], mh))
	if errors.Is(err, pebble.ErrNotFound) {
		s.missed()
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
	s.lookups.Add(1)
	if !s.mayHave(mh) {
		return false, nil
	}
	var kb [80]byte
	_, closer, err := s.db.Get(indexKey(kb[:], mh))
	if errors.Is(err, pebble.ErrNotFound) {
		s.missed()
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// Get returns a copy of the block's bytes, never Verified, in a buffer of
// the store's pool that the block's Release hands back for the next Get. A
// missing block is an error of kind errs.NotFound.
func (s *Store) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	parts, release, err := s.BorrowParts(ctx, c)
	if err != nil {
		return share.Block{}, err
	}
	defer release()
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return share.NewBlock(appendParts(s.bufs.get(n), parts), false, s.release), nil
}

// GetAppend appends the block's bytes to dst and returns the extended slice.
// With a dst of enough capacity (a pooled buffer) it does not allocate.
func (s *Store) GetAppend(ctx context.Context, dst []byte, c cid.Cid) ([]byte, error) {
	parts, release, err := s.BorrowParts(ctx, c)
	if err != nil {
		return dst, err
	}
	defer release()
	return appendParts(dst, parts), nil
}

// appendParts appends the parts of a block to dst, growing it once.
func appendParts(dst []byte, parts [][]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	dst = slices.Grow(dst, n)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst
}

// View calls fn with the block's bytes, without copying them when the block
// is stored in one piece. data is valid only during the call and must not be
// modified. fn's error is returned.
func (s *Store) View(ctx context.Context, c cid.Cid, fn func(data []byte) error) error {
	data, release, err := s.Borrow(ctx, c)
	if err != nil {
		return err
	}
	defer release()
	return fn(data)
}

// Borrow returns the block's bytes and a release function that the caller
// must call exactly once when done; until then data stays valid (and must
// not be modified). A block stored in one piece comes straight from Pebble's
// block cache, without a copy, and holds its share of the cache until
// released; one stored in parts is copied together.
func (s *Store) Borrow(ctx context.Context, c cid.Cid) (data []byte, release func(), err error) {
	parts, release, err := s.BorrowParts(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	if len(parts) == 1 {
		return parts[0], release, nil
	}
	defer release()
	return appendParts(nil, parts), func() {}, nil
}

// BorrowParts returns the block's bytes as the pieces it is stored in
// (their concatenation is the block), straight from Pebble's block cache
// without a copy, and a release function that the caller must call exactly
// once when done; until then the parts stay valid (and must not be
// modified), and they hold their share of the cache. Serving peers uses it
// to send blocks without a copy.
func (s *Store) BorrowParts(ctx context.Context, c cid.Cid) (parts [][]byte, release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	mh := c.Hash()
	if !s.mayHave(mh) {
		return nil, nil, errs.E(errs.NotFound, c)
	}
	var kb [80]byte
	for range 3 {
		v, closer, err := s.db.Get(indexKey(kb[:], mh))
		if errors.Is(err, pebble.ErrNotFound) {
			s.missed()
			return nil, nil, errs.E(errs.NotFound, c)
		}
		if err != nil {
			return nil, nil, blockErr(c, err)
		}
		e, err := parseEntry(v)
		if err != nil {
			closer.Close()
			return nil, nil, fmt.Errorf("block %s: %w", c, err)
		}
		if !e.ref {
			return [][]byte{e.inline}, func() { closer.Close() }, nil
		}
		closer.Close()
		parts, release, err := s.readParts(e)
		if errors.Is(err, pebble.ErrNotFound) {
			continue // deleted between the reads? look again
		}
		if err != nil {
			return nil, nil, blockErr(c, err)
		}
		return parts, release, nil
	}
	return nil, nil, fmt.Errorf("block %s: index points at missing data", c)
}

// readParts reads the data keys of an ingested block.
func (s *Store) readParts(e entry) ([][]byte, func(), error) {
	n := e.parts()
	parts := make([][]byte, 0, n)
	closers := make([]io.Closer, 0, n)
	release := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	for i := range n {
		v, closer, err := s.db.Get(partKey(e.seq, i))
		if err != nil {
			release()
			return nil, nil, err
		}
		closers = append(closers, closer)
		if len(v) != e.partLen(i) {
			release()
			return nil, nil, fmt.Errorf("stored part %d is %d bytes, index says %d", i, len(v), e.partLen(i))
		}
		parts = append(parts, v)
	}
	return parts, release, nil
}

// Has reports whether the block is stored.
func (s *Store) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ok, err := s.has(c.Hash())
	if err != nil {
		return false, blockErr(c, err)
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
		return 0, blockErr(c, err)
	}
	if !ok {
		return 0, errs.E(errs.NotFound, c)
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
	if _, err := s.putInline([]block{{mh: c.Hash(), data: data}}, checked{}); err != nil {
		return fmt.Errorf("block %s: %w", c, err)
	}
	return nil
}

type block struct {
	mh   []byte
	data []byte
}

// checked says that a writer looked up every block it is about to index
// and found it missing, in lookups begun when Store.added was gen.
type checked struct {
	gen uint64
	ok  bool // false: some block was not looked up
}

// fresh reports, under indexMu, whether nothing can have added index
// entries since the lookups c describes, so that they still hold and the
// writer need not look its blocks up again.
func (s *Store) fresh(c checked) bool { return c.ok && s.added.Load() == c.gen }

// indexed is called under indexMu after a commit that may have added
// index entries. It returns the new generation and, if the commit's
// lookups were c and still held, the generation with which those of the
// same writer's later blocks still hold: it added only blocks of its
// own, which its other blocks are not (a Batch never Puts one twice).
func (s *Store) indexed(skipped bool) checked {
	g := s.added.Add(1)
	return checked{gen: g, ok: skipped}
}

// putInline stores blocks inline in their index entries with one synced
// write, skipping those already stored. blocks holds no multihash twice
// (a Batch's are unique), or the count would be wrong. If c still holds
// (see fresh), the blocks are not looked up again.
func (s *Store) putInline(blocks []block, c checked) (checked, error) {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	skip := s.fresh(c)
	b := s.db.NewBatch()
	defer b.Close()
	var kb [80]byte
	var d counts
	for _, bl := range blocks {
		if !skip {
			ok, err := s.has(bl.mh)
			if err != nil {
				return checked{}, err
			}
			if ok {
				continue
			}
		}
		s.filterAdd(bl.mh)
		if err := b.Set(indexKey(kb[:], bl.mh), inlineValue(bl.data), nil); err != nil {
			return checked{}, err
		}
		d.blocks++
		d.bytes += int64(len(bl.data))
	}
	if b.Empty() {
		return checked{}, nil
	}
	if err := s.addCount(b, d); err != nil {
		return checked{}, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return checked{}, err
	}
	s.committedCount(d)
	return s.indexed(skip), nil
}

// deleteData deletes the data keys of the block at seq: one key, or the
// range of its parts.
func deleteData(b *pebble.Batch, seq uint64, inParts bool) error {
	if inParts {
		return b.DeleteRange(dataKey(seq), dataKey(seq+1), nil)
	}
	return b.Delete(dataKey(seq), nil)
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
	inParts := make(map[uint64]bool)
	seen := make(map[string]struct{}, len(mhs)) // the lookups do not see b
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
		if _, dup := seen[string(mh)]; dup {
			continue
		}
		seen[string(mh)] = struct{}{}
		if e.ref {
			seqs = append(seqs, e.seq)
			if e.part > 0 {
				inParts[e.seq] = true
			}
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
			err = deleteData(b, r.start, inParts[r.start])
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
	d := counts{-int64(freedBlocks), -freedBytes}
	if err := s.addCount(b, d); err != nil {
		return 0, 0, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, 0, fmt.Errorf("blockstore: delete: %w", err)
	}
	s.committedCount(d)
	s.filterDeleted(seen)
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
	return s.scan(ctx, func(mh []byte, size int) error { return fn(slices.Clone(mh), size) })
}

// Scan is ForEach without a copy: mh is valid only during the call (gc's
// sweep reads a million of them and keeps few).
func (s *Store) Scan(ctx context.Context, fn func(mh []byte, size int) error) error {
	return s.scan(ctx, fn)
}

func (s *Store) scan(ctx context.Context, fn func(mh []byte, size int) error) error {
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
			return indexErr(err)
		}
		e, err := parseEntry(v)
		if err != nil {
			it.Close()
			return fmt.Errorf("blockstore: index key %x: %w", it.Key(), err)
		}
		if err := fn(it.Key()[1:], e.size); err != nil {
			it.Close()
			return err
		}
	}
	return indexErr(it.Close())
}

// Stat describes the store.
type Stat struct {
	Blocks int   // number of stored blocks
	Bytes  int64 // sum of their sizes
	// DiskUsage is the space the store's directory takes on disk, as du
	// counts it: the blocks allocated to every file (Pebble's WAL is
	// preallocated, and its own figure counts neither that nor the files
	// it does not track).
	DiskUsage uint64
}

// Stat returns the block count (kept with the index, so a million blocks
// cost nothing to count) and the disk space the store's files take (a walk
// of its directory: a few hundred files, not one per block).
func (s *Store) Stat(ctx context.Context) (Stat, error) {
	if err := ctx.Err(); err != nil {
		return Stat{}, err
	}
	c := s.countNow.Load()
	st := Stat{Blocks: int(c.blocks), Bytes: c.bytes}
	var err error
	st.DiskUsage, err = diskUsage(s.dir)
	return st, err
}
