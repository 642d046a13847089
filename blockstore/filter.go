package blockstore

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// The miss filter: a Bloom filter of the index's multihashes, in memory,
// that answers most lookups of a block that is not stored without asking
// Pebble. With a million blocks such a lookup costs Pebble tens of µs (the
// index keys spread over several levels, each with a filter block that is
// read back from the OS: Pebble v2 cannot pin them in its cache), and an
// add or a fetch looks up every new block. The filter costs 2-3 bytes a
// block.
//
// It is never stored: a store builds it by a scan of the index once
// enough lookups have missed (a short-lived command that looks up a few
// blocks never pays for the scan), and every writer of the index adds its
// keys to it before the batch that writes them commits, under indexMu.
// So it can only say "maybe" of a block that is not stored (a false
// positive costs one Pebble lookup; deleted blocks get tombstones, see
// missFilter), never "no" of one that is: a crash loses the filter, not
// its correctness. A new filter is built when the keys added reach
// its capacity, or when there are many tombstones (see missFilter).

// filterMisses is the number of lookups that miss Pebble, with no filter
// built yet, after which the store builds one. A scan costs about as much
// as a few thousand misses in a store of a million blocks.
const filterMisses = 4096

// filterBlockWords is the number of 32-bit words in one block of the
// filter (256 bits, within one cache line): a key sets one bit in each.
const filterBlockWords = 8

// filterBitsPerKey is the filter's size per key at full capacity: under
// 0.5% false positives (TestFilter), fewer below it.
const filterBitsPerKey = 16

// filterSalts spread a key's 32-bit hash over the words of its block
// (odd constants, as in Parquet's split-block Bloom filter).
var filterSalts = [filterBlockWords]uint32{
	0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d,
	0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31,
}

// filter is a split-block Bloom filter of multihashes, safe for concurrent
// adds and lookups (atomic words: a lookup never waits for a writer).
type filter struct {
	seed     maphash.Seed
	words    []uint32
	blocks   uint64
	capacity int64        // keys it was sized for
	n        atomic.Int64 // keys added
}

// newFilter returns an empty filter sized for capacity keys.
func newFilter(capacity int64) *filter {
	blocks := uint64(capacity*filterBitsPerKey+255) / 256
	blocks = max(blocks, 1)
	return &filter{seed: maphash.MakeSeed(), words: make([]uint32, blocks*filterBlockWords), blocks: blocks, capacity: capacity}
}

// filterCapacity is the capacity of a filter built for a store of n
// blocks: room to grow by half before it is rebuilt.
func filterCapacity(n int64) int64 { return n + n/2 + 1<<16 }

// block returns the words of mh's block and the 32 bits that pick its
// bits in them.
func (f *filter) block(mh []byte) ([]uint32, uint32) {
	h := maphash.Bytes(f.seed, mh)
	i := (h >> 32) * f.blocks >> 32
	return f.words[i*filterBlockWords : (i+1)*filterBlockWords : (i+1)*filterBlockWords], uint32(h)
}

// add adds mh and reports whether the filter is now over its capacity.
func (f *filter) add(mh []byte) (full bool) {
	w, x := f.block(mh)
	for i, salt := range filterSalts {
		atomic.OrUint32(&w[i], 1<<((x*salt)>>27))
	}
	return f.n.Add(1) > f.capacity
}

// mayHave reports whether mh may have been added; false is certain.
func (f *filter) mayHave(mh []byte) bool {
	w, x := f.block(mh)
	for i, salt := range filterSalts {
		if atomic.LoadUint32(&w[i])&(1<<((x*salt)>>27)) == 0 {
			return false
		}
	}
	return true
}

// missFilter is a Store's filter and the state of its builds.
type missFilter struct {
	cur    atomic.Pointer[filter] // nil: none built yet
	misses atomic.Int64           // lookups that missed with cur nil

	mu      sync.Mutex // guards running, failed and closed
	running bool       // a build is under way
	failed  bool       // a build failed: the store's index is damaged
	closed  bool
	wg      sync.WaitGroup
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc

	// building is the filter a build fills, which writers add to as well
	// (under Store.indexMu).
	building *filter
	// scanning, if not nil, is called by a build once its scan's
	// snapshot is taken (tests write blocks the scan cannot see).
	scanning func()

	// Tombstones: the blocks deleted from the index, and not stored again
	// since, that the filter in use may still say "maybe" of (a Bloom
	// filter cannot forget a key). Without them, adding again a tree that
	// a collection freed would ask Pebble about every block. A block
	// enters after its delete commits and leaves before it is indexed
	// again (under indexMu), so a tombstone is always true. prevTomb are
	// those from before the build under way began: its filter will not
	// have them.
	tombMu         sync.RWMutex
	tomb, prevTomb map[string]struct{}
	tombN          atomic.Int64 // len(tomb) + len(prevTomb)
}

// maxTombstones is the number of tombstones at which the filter is built
// again without them (about 100 bytes each).
const maxTombstones = 1 << 16

// mayHave reports whether mh may be in the index: false only when the
// filter is built and says so, or a tombstone does.
func (s *Store) mayHave(mh []byte) bool {
	f := s.filter.cur.Load()
	if f == nil || !f.mayHave(mh) {
		return f == nil
	}
	return s.filter.tombN.Load() == 0 || !s.filter.tombstoned(mh)
}

func (m *missFilter) tombstoned(mh []byte) bool {
	m.tombMu.RLock()
	defer m.tombMu.RUnlock()
	_, ok := m.tomb[string(mh)]
	if !ok {
		_, ok = m.prevTomb[string(mh)]
	}
	return ok
}

// filterDeleted records the blocks whose deletes from the index have
// just committed (the caller holds indexMu), and builds the filter again
// once there are many of them.
func (s *Store) filterDeleted(mhs map[string]struct{}) {
	m := &s.filter
	if m.cur.Load() == nil && m.building == nil {
		return // Pebble answers every lookup, or will have them right
	}
	m.tombMu.Lock()
	if m.tomb == nil {
		m.tomb = make(map[string]struct{}, len(mhs))
	}
	for mh := range mhs {
		m.tomb[mh] = struct{}{}
	}
	n := int64(len(m.tomb) + len(m.prevTomb))
	m.tombN.Store(n)
	m.tombMu.Unlock()
	if n >= maxTombstones {
		s.startFilter()
	}
}

// untomb removes mh's tombstone, if any, before mh is indexed again
// (under indexMu).
func (m *missFilter) untomb(mh []byte) {
	if m.tombN.Load() == 0 {
		return
	}
	m.tombMu.Lock()
	delete(m.tomb, string(mh))
	delete(m.prevTomb, string(mh))
	m.tombN.Store(int64(len(m.tomb) + len(m.prevTomb)))
	m.tombMu.Unlock()
}

// turnTombs starts a build's tombstones (under indexMu, as the build
// begins): those so far are prevTomb, dropped if it succeeds (done true)
// and merged back if not.
func (m *missFilter) turnTombs(begin, ok bool) {
	m.tombMu.Lock()
	defer m.tombMu.Unlock()
	switch {
	case begin:
		for mh := range m.tomb {
			if m.prevTomb == nil {
				m.prevTomb = make(map[string]struct{}, len(m.tomb))
			}
			m.prevTomb[mh] = struct{}{}
		}
		m.tomb = nil
	case ok:
		m.prevTomb = nil
	default:
		for mh := range m.prevTomb {
			if m.tomb == nil {
				m.tomb = make(map[string]struct{}, len(m.prevTomb))
			}
			m.tomb[mh] = struct{}{}
		}
		m.prevTomb = nil
	}
	m.tombN.Store(int64(len(m.tomb) + len(m.prevTomb)))
}

// missed records a lookup that Pebble answered "not found", and starts
// building the filter once there are enough of them.
func (s *Store) missed() {
	if s.filter.cur.Load() == nil && s.filter.misses.Add(1) == filterMisses {
		s.startFilter()
	}
}

// filterAdd adds mh, about to be written to the index, to the filters
// (the one in use and the one being built). The caller holds indexMu and
// calls it before the write commits.
func (s *Store) filterAdd(mh []byte) {
	s.filter.untomb(mh)
	if f := s.filter.cur.Load(); f != nil && f.add(mh) {
		s.startFilter() // over capacity: build a bigger one
	}
	if f := s.filter.building; f != nil {
		f.add(mh)
	}
}

// startFilter builds a filter in the background, unless a build runs
// already or the store is closing.
func (s *Store) startFilter() {
	if !s.filter.begin() {
		return
	}
	go s.runFilter()
}

// begin claims the one build that may run at a time (builds share
// building): false if one runs, a build failed or the store is closing.
func (m *missFilter) begin() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running || m.failed || m.closed {
		return false
	}
	m.running = true
	m.wg.Add(1)
	return true
}

// runFilter runs the build that begin claimed.
func (s *Store) runFilter() {
	m := &s.filter
	defer m.wg.Done()
	err := s.buildFilter(m.ctx)
	if err != nil && m.ctx.Err() == nil {
		s.opts.Logger.Debug("blockstore: miss filter not built", "err", err)
	}
	m.mu.Lock()
	m.running = false
	m.failed = err != nil && m.ctx.Err() == nil
	m.mu.Unlock()
}

// stopFilter ends a build under way and waits for it (at Close).
func (s *Store) stopFilter() {
	m := &s.filter
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// buildFilter fills a new filter from a scan of the index and puts it in
// use; the caller has claimed the build (begin). Writers add their keys to it from before the scan's snapshot is
// taken, so it misses none.
func (s *Store) buildFilter(ctx context.Context) error {
	s.indexMu.Lock()
	f := newFilter(filterCapacity(s.count.blocks))
	s.filter.building = f
	s.filter.turnTombs(true, false)
	s.indexMu.Unlock()
	err := s.scanKeys(ctx, s.filter.scanning, func(mh []byte) { f.add(mh) })
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	s.filter.building = nil
	s.filter.turnTombs(false, err == nil)
	if err != nil {
		return err
	}
	s.filter.cur.Store(f)
	return nil
}

// scanKeys calls fn with every multihash of the index (valid only during
// the call), and first opened, if not nil, once the scan's snapshot is
// taken.
func (s *Store) scanKeys(ctx context.Context, opened func(), fn func(mh []byte)) error {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{prefixIndex}, UpperBound: []byte{prefixIndex + 1}})
	if err != nil {
		return err
	}
	if opened != nil {
		opened()
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			it.Close()
			return ctx.Err()
		}
		fn(it.Key()[1:])
	}
	return indexErr(it.Close())
}
