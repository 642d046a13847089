// Package gc removes every block that no pin reaches. It marks from the pin
// set, then sweeps the blockstore. A Lock keeps it from sweeping blocks that
// an add or a fetch has written but not pinned yet.
package gc

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/pin"
)

// Lock coordinates gc with writers. Writers (add, fetch followed by pin)
// hold it shared from their first block until the pin that protects their
// blocks is durable; gc holds it exclusively, so it never sees a half-done
// write. A writer's hold is not reentrant: one goroutine must not take
// Writer again while it holds it (a gc waiting in between would deadlock
// both). The zero value is ready to use.
type Lock struct {
	mu sync.RWMutex

	fmu     sync.Mutex
	fetches []*fetchRecord // oldest first
	// watches are the collections under way: each gathers the roots of
	// the fetches that ran at its start or began before it got the lock.
	watches []*watch
}

type watch struct{ roots []cid.Cid }

type fetchRecord struct{ root cid.Cid }

// Writer takes the shared side and returns its release.
func (l *Lock) Writer() (unlock func()) { l.mu.RLock(); return l.mu.RUnlock }

// Collector takes the exclusive side and returns its release.
func (l *Lock) Collector() (unlock func()) { l.mu.Lock(); return l.mu.Unlock }

// Fetching records that a fetch of the DAG under root runs, under a
// Writer hold its caller has taken: a collection that starts before done
// is called says it waits for it and, once it runs, keeps what is stored
// of that DAG (the fetch's blocks are not pinned, but they are its
// caller's until it ends).
func (l *Lock) Fetching(root cid.Cid) (done func()) {
	rec := &fetchRecord{root}
	l.fmu.Lock()
	l.fetches = append(l.fetches, rec)
	for _, w := range l.watches {
		w.roots = append(w.roots, root)
	}
	l.fmu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.fmu.Lock()
			defer l.fmu.Unlock()
			if i := slices.Index(l.fetches, rec); i >= 0 {
				l.fetches = slices.Delete(l.fetches, i, i+1)
			}
		})
	}
}

// Fetches lists the roots of the fetches running, oldest first.
func (l *Lock) Fetches() []cid.Cid {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	roots := make([]cid.Cid, len(l.fetches))
	for i, f := range l.fetches {
		roots[i] = f.root
	}
	return roots
}

// collect takes the exclusive side for a collection, telling waiting
// first what it waits for when writers hold the lock, and returns the
// roots of the fetches that ran since it started (to keep). It gives up
// when ctx ends.
func (l *Lock) collect(ctx context.Context, waiting func(Waiting)) (keep []cid.Cid, unlock func(), err error) {
	w := l.watch()
	defer l.unwatch(w)
	if l.mu.TryLock() {
		return l.kept(w), l.mu.Unlock, nil
	}
	if waiting != nil {
		waiting(Waiting{Fetches: l.Fetches()})
	}
	got := make(chan struct{})
	go func() { l.mu.Lock(); close(got) }()
	select {
	case <-got:
		return l.kept(w), l.mu.Unlock, nil
	case <-ctx.Done():
		go func() { <-got; l.mu.Unlock() }()
		return nil, nil, ctx.Err()
	}
}

// watch starts gathering the roots of the fetches that run from now on,
// and those running now.
func (l *Lock) watch() *watch {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	w := &watch{}
	for _, f := range l.fetches {
		w.roots = append(w.roots, f.root)
	}
	l.watches = append(l.watches, w)
	return w
}

func (l *Lock) kept(w *watch) []cid.Cid {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	return slices.Clone(w.roots)
}

func (l *Lock) unwatch(w *watch) {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if i := slices.Index(l.watches, w); i >= 0 {
		l.watches = slices.Delete(l.watches, i, i+1)
	}
}

// Waiting is what a collection waits for before it can start: the roots
// of the fetches running (none: an add, or a fetch about to start).
type Waiting struct{ Fetches []cid.Cid }

// String says it as a user reads it: "waiting for 1 fetch to finish:
// CID".
func (w Waiting) String() string {
	switch n := len(w.Fetches); n {
	case 0:
		return "waiting for an add or a fetch to finish"
	case 1:
		return "waiting for 1 fetch to finish: " + w.Fetches[0].String()
	default:
		roots := make([]string, n)
		for i, c := range w.Fetches {
			roots[i] = c.String()
		}
		return fmt.Sprintf("waiting for %d fetches to finish: %s", n, strings.Join(roots, ", "))
	}
}

// Store is what gc needs of the blockstore.
type Store interface {
	share.Getter
	// Scan calls fn for every stored block; mh is valid only during the
	// call.
	Scan(ctx context.Context, fn func(mh []byte, size int) error) error
	Delete(ctx context.Context, mhs []multihash.Multihash) (blocks int, bytes int64, err error)
	Reclaim(ctx context.Context) error
}

// Result says what a collection removed.
type Result struct {
	Blocks int
	Bytes  int64
}

// Options tune a collection.
type Options struct {
	// Need stops the collection once it has freed at least this many
	// bytes (<= 0: no limit), for auto-gc that only brings the
	// repository back under its limit.
	Need int64
	// Waiting, if not nil, is told what the collection waits for, when
	// writers hold the lock as it starts.
	Waiting func(Waiting)
}

// Collect removes every block that no pin in pins reaches. It fails, and
// removes nothing, if a pinned DAG cannot be walked (a missing inner block
// would otherwise hide live children).
func Collect(ctx context.Context, lock *Lock, store Store, pins *pin.Set) (Result, error) {
	return Run(ctx, lock, store, pins, Options{})
}

// CollectUntil is Collect that stops once it has freed at least need
// bytes (need <= 0: no limit).
func CollectUntil(ctx context.Context, lock *Lock, store Store, pins *pin.Set, need int64) (Result, error) {
	return Run(ctx, lock, store, pins, Options{Need: need})
}

// Run is Collect with options. Besides the pinned DAGs, it keeps what is
// stored of the DAGs being fetched when it starts: it waits for those
// fetches to end, and their blocks stay until a later collection.
//
// While it marks, another goroutine lists the keys of the stored blocks
// (see liveSet); if every one of them is live there is nothing to free
// and the sweep, a second scan of the index, is skipped: with a million
// blocks that is the common case, and it takes the scan off the mark's
// path onto the other core.
func Run(ctx context.Context, lock *Lock, store Store, pins *pin.Set, opts Options) (Result, error) {
	keep, unlock, err := lock.collect(ctx, opts.Waiting)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	listed := make(chan storedKeys, 1)
	go func() { listed <- listStored(ctx, store) }()
	live, err := mark(ctx, store, pins)
	if err == nil {
		for _, root := range keep {
			if !live.has(root.Hash()) {
				markStored(ctx, store, root, live)
			}
		}
	}
	if err != nil {
		cancel()
	}
	stored := <-listed // the scan must end before the lock is released
	if err != nil {
		return Result{}, err
	}
	if stored.err == nil && live.hasAll(stored.keys) {
		return Result{}, nil
	}
	return sweep(ctx, store, live, opts.Need)
}

// storedKeys are the keys (see liveKey) of the stored blocks, sorted.
type storedKeys struct {
	keys []uint64
	err  error
}

// listStored lists the keys of the stored blocks: 8 bytes a block.
func listStored(ctx context.Context, store Store) storedKeys {
	var keys []uint64
	err := store.Scan(ctx, func(mh []byte, _ int) error {
		keys = append(keys, liveKey(mh))
		return nil
	})
	slices.Sort(keys) // in order already, for one hash function
	return storedKeys{keys, err}
}

// sweep removes every block not in live, until need bytes are freed.
func sweep(ctx context.Context, store Store, live *liveSet, need int64) (Result, error) {
	var dead []multihash.Multihash
	var deadBytes int64
	err := store.Scan(ctx, func(mh []byte, size int) error {
		if need > 0 && deadBytes >= need {
			return nil
		}
		if !live.has(mh) {
			dead = append(dead, append(multihash.Multihash(nil), mh...))
			deadBytes += int64(size)
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("gc sweep: %w", err)
	}
	if len(dead) == 0 {
		return Result{}, nil
	}
	n, bytes, err := store.Delete(ctx, dead)
	if err != nil {
		return Result{Blocks: n, Bytes: bytes}, fmt.Errorf("gc sweep: %w", err)
	}
	if err := store.Reclaim(ctx); err != nil {
		return Result{Blocks: n, Bytes: bytes}, fmt.Errorf("gc reclaim: %w", err)
	}
	return Result{Blocks: n, Bytes: bytes}, nil
}

// markStored adds to live the blocks of the DAG under root that are
// stored: a fetch that ended early left part of it, which is kept as far
// as it can be walked.
func markStored(ctx context.Context, store Store, root cid.Cid, live *liveSet) {
	dag.Walk(ctx, store, root, dag.WalkOptions{}, func(c cid.Cid) error {
		if c.Type() == dag.DagPB {
			if ok, err := store.Has(ctx, c); err != nil || !ok {
				return dag.SkipNode
			}
		}
		live.add(c.Hash())
		return nil
	})
}

// mark returns the blocks some pin keeps. A DAG that several pins share
// is walked once. It walks the pinned DAGs a level at a time, reading
// each level's nodes in multihash order (see nodeReader).
func mark(ctx context.Context, store Store, pins *pin.Set) (*liveSet, error) {
	var list []pin.Pin // walked after Each, which holds the pin set's lock
	if err := pins.Each(ctx, func(p pin.Pin) error { list = append(list, p); return nil }); err != nil {
		return nil, fmt.Errorf("gc mark: %w", err)
	}
	m := marker{live: newLiveSet(), walked: make(map[string]struct{})}
	var level []node
	for _, p := range list {
		if p.Mode == pin.Direct {
			m.live.add(p.Cid.Hash())
			continue
		}
		level = m.visit(level, p.Cid, p.Cid)
	}
	for len(level) > 0 {
		var err error
		if level, err = m.expand(ctx, store, level); err != nil {
			return nil, err
		}
	}
	return m.live, nil
}

// marker is the state of a mark.
type marker struct {
	live   *liveSet
	walked map[string]struct{} // exact: skipping a subtree must never be a guess
}

// node is a dag-pb node to read, under pin.
type node struct{ c, pin cid.Cid }

// visit marks c, reached from pin, and appends it to next if it is a
// node whose links are still to be read.
func (m *marker) visit(next []node, c, pin cid.Cid) []node {
	mh := cidHash(c)
	m.live.keys, m.live.sorted = append(m.live.keys, liveKey(mh)), false
	if c.Type() == dag.Raw {
		return next
	}
	if _, ok := m.walked[mh]; ok {
		return next
	}
	m.walked[mh] = struct{}{}
	return append(next, node{c, pin})
}

// cidHash is c's multihash, without the copy c.Hash makes.
func cidHash(c cid.Cid) string {
	s := c.KeyString()
	if len(s) == 34 && s[0] == 0x12 && s[1] == 0x20 { // CIDv0
		return s
	}
	n := uvarintLen(s)
	return s[n+uvarintLen(s[n:]):] // version, codec
}

// uvarintLen is the length of the uvarint s begins with (0: none).
func uvarintLen[T string | []byte](s T) int {
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		if s[i] < 0x80 {
			return i + 1
		}
	}
	return 0
}

// parallelLevel is the size of a level from which expand reads it on two
// goroutines.
const parallelLevel = 1024

// expand reads the nodes of level, in multihash order (in two halves at
// once when it is large), marks their links and returns the nodes of the
// next level.
func (m *marker) expand(ctx context.Context, store Store, level []node) ([]node, error) {
	slices.SortFunc(level, func(a, b node) int { return strings.Compare(a.c.KeyString(), b.c.KeyString()) })
	parts := 1
	if len(level) >= parallelLevel {
		parts = min(2, runtime.GOMAXPROCS(0))
	}
	outs := make([]expanded, parts)
	var wg sync.WaitGroup
	for i := range parts {
		lo, hi := len(level)*i/parts, len(level)*(i+1)/parts
		wg.Go(func() { outs[i] = m.read(ctx, store, level[lo:hi]) })
	}
	wg.Wait()
	var next []node
	for _, o := range outs {
		if o.err != nil {
			return nil, o.err
		}
		m.live.addKeys(o.leaves)
		for _, n := range o.inner {
			next = m.visit(next, n.c, n.pin)
		}
	}
	return next, nil
}

// expanded is what read found: the keys of raw leaves, and the links to
// other nodes not walked before.
type expanded struct {
	leaves []uint64
	inner  []node
	err    error
}

// read reads nodes, in order. It only reads m (expand's goroutines run
// it at once).
func (m *marker) read(ctx context.Context, store Store, nodes []node) (o expanded) {
	r := newNodeReader(store)
	defer r.close()
	for _, n := range nodes {
		if err := ctx.Err(); err != nil {
			return expanded{err: err}
		}
		links, err := r.links(ctx, n.c)
		if err != nil {
			return expanded{err: fmt.Errorf("gc mark: pin %s: %w", n.pin, err)}
		}
		for _, l := range links {
			if l.Hash.Type() == dag.Raw {
				o.leaves = append(o.leaves, liveKey(cidHash(l.Hash)))
			} else if _, ok := m.walked[cidHash(l.Hash)]; !ok {
				o.inner = append(o.inner, node{l.Hash, n.pin})
			}
		}
	}
	return o
}

// orderedStore is a store that reads blocks fastest in multihash order
// (*blockstore.Store): with a million blocks a Get costs about 20 µs,
// most of it reading bloom filters back from the OS.
type orderedStore interface {
	NewOrderedReader() *blockstore.Reader
}

// nodeReader reads and verifies DAG nodes for the mark.
type nodeReader struct {
	g   share.Getter
	r   *blockstore.Reader // nil: g does not read in order
	buf []byte
}

func newNodeReader(store Store) *nodeReader {
	nr := &nodeReader{g: store}
	if o, ok := store.(orderedStore); ok {
		nr.r = o.NewOrderedReader()
	}
	return nr
}

func (nr *nodeReader) close() {
	if nr.r != nil {
		nr.r.Close()
	}
}

// links returns the links of the verified node c.
func (nr *nodeReader) links(ctx context.Context, c cid.Cid) ([]dag.PBLink, error) {
	if nr.r == nil {
		b, err := nr.g.Get(ctx, c)
		if err != nil {
			return nil, errs.E("get", c, err)
		}
		defer b.Release()
		return verifiedLinks(c, b.Data)
	}
	var err error
	nr.buf, _, err = nr.r.Append(nr.buf[:0], c, math.MaxInt)
	if err != nil {
		return nil, errs.E("get", c, err)
	}
	return verifiedLinks(c, nr.buf)
}

func verifiedLinks(c cid.Cid, data []byte) ([]dag.PBLink, error) {
	if err := dag.Verify(c, data); err != nil {
		return nil, err
	}
	return dag.Links(c, data) // copies: data may be reused
}

// liveSet is the set of blocks a collection keeps, as the first 8 bytes
// of each multihash's digest (random bits, for a cryptographic hash) in
// a slice that is sorted once marking is done: no pointers for the Go
// collector to scan, 8 bytes a block (a map of strings took 110 MB and
// most of gc's CPU for a million blocks). The sweep asks about the
// stored blocks in multihash order, which is the order of their keys
// (for one hash function), so each lookup steps forward from the last
// one instead of searching the whole set. Two multihashes whose digests
// begin alike can only make gc keep a dead block, never remove a live
// one.
type liveSet struct {
	keys   []uint64
	sorted bool
	next   int // where the last lookup ended
}

func newLiveSet() *liveSet { return &liveSet{} }

// liveKey is the first 8 bytes of mh's digest (zero-padded), or of mh
// itself if it does not parse.
func liveKey[T string | []byte](mh T) uint64 {
	d := mh
	if n := uvarintLen(d); n > 0 {
		if m := uvarintLen(d[n:]); m > 0 {
			d = d[n+m:]
		}
	}
	var b [8]byte
	copy(b[:], d)
	return binary.BigEndian.Uint64(b[:])
}

func (l *liveSet) add(mh []byte) { l.keys, l.sorted = append(l.keys, liveKey(mh)), false }

func (l *liveSet) addKeys(keys []uint64) { l.keys, l.sorted = append(l.keys, keys...), false }

// hasAll reports whether every key of sorted is in the set.
func (l *liveSet) hasAll(sorted []uint64) bool {
	l.sort()
	keys := l.keys
	i := 0
	for _, k := range sorted {
		for i < len(keys) && keys[i] < k {
			i++
		}
		if i == len(keys) || keys[i] != k {
			return false
		}
	}
	return true
}

func (l *liveSet) sort() {
	if !l.sorted {
		slices.Sort(l.keys)
		l.keys, l.sorted, l.next = slices.Compact(l.keys), true, 0
	}
}

// forward is how far a lookup steps through the set before it searches.
const forward = 8

func (l *liveSet) has(mh []byte) bool {
	l.sort()
	k, keys := liveKey(mh), l.keys
	i := l.next
	if i > len(keys) || i > 0 && keys[i-1] >= k { // behind the last lookup
		i = 0
	}
	end := min(i+forward, len(keys))
	for i < end && keys[i] < k {
		i++
	}
	if i == end && i < len(keys) && keys[i] < k {
		j, _ := slices.BinarySearch(keys[i:], k)
		i += j
	}
	l.next = i
	return i < len(keys) && keys[i] == k
}
