package blockstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/errs"
)

// Reader reads small blocks one after the other through two Pebble
// iterators, for a server answering a peer that asks for many: a Get
// builds an iterator over every level of the store for each of its two
// lookups (the index, then the data), which is most of the cost of a
// 1 KiB block; a Reader seeks the same iterators again. The index and
// the data have an iterator each, so that each keeps the sstable block
// it is in: one iterator going back and forth between the two read and
// checksummed a whole 64 KiB data block again for each 1 KiB block
// (BenchmarkReader).
//
// A Reader sees the store as it was when its iterator was opened: at its
// first read after NewReader or Reset. A block stored since is missing
// from it (errs.NotFound, as for a block that is not there at all: the
// caller asks the store itself to tell the two apart), and a block
// deleted since can still be read. The iterator holds on to the files and
// memtables of that view, so a Reader is Reset whenever its user pauses
// and every so many reads. A Reader is not safe for concurrent use.
type Reader struct {
	s       *Store
	it      *pebble.Iterator // the index
	data    *pebble.Iterator // the data of ingested blocks, opened with it
	n       int              // reads since the iterators were opened
	ordered bool             // NewOrderedReader
	kb      [80]byte
}

// readerSpan is how many blocks a Reader reads before it opens a fresh
// iterator (Reset), so that it never holds on to an old view of the
// store for long.
const readerSpan = 4096

// NewReader returns a Reader of s; Close it when done.
func (s *Store) NewReader() *Reader { return &Reader{s: s} }

// NewOrderedReader returns a Reader for blocks read in increasing
// multihash order (gc's mark reads every pinned DAG's nodes so). It seeks
// its iterator forward, which reads each block of the index once and
// never a bloom filter, where a Get, or a Reader's seek for one key,
// checks the filter of every level that may hold the key: with a million
// blocks the filter blocks do not stay in the cache, and a Get costs
// about 20 µs. Reads out of order are correct, only slower.
func (s *Store) NewOrderedReader() *Reader { return &Reader{s: s, ordered: true} }

// Reset closes the Reader's iterators: the next read sees the store as
// it is then, and the files of the old view can go.
func (r *Reader) Reset() {
	if r.it != nil {
		r.it.Close()
		r.data.Close()
		r.it, r.data = nil, nil
	}
}

// Close releases the Reader.
func (r *Reader) Close() error {
	r.Reset()
	return nil
}

// Append appends the bytes of block c to dst if the block is at most max
// bytes; ok false means it is bigger (dst is returned as it was: read it
// with BorrowParts). A block missing from the Reader's view is of kind
// errs.NotFound.
func (r *Reader) Append(dst []byte, c cid.Cid, max int) (out []byte, ok bool, err error) {
	if err := r.open(); err != nil {
		return dst, false, blockErr(c, err)
	}
	if !r.seekIndex(indexKey(r.kb[:], c.Hash())) {
		if err := r.it.Error(); err != nil {
			return dst, false, blockErr(c, err)
		}
		return dst, false, errs.E(errs.NotFound, c)
	}
	e, err := parseEntry(r.it.Value())
	if err != nil {
		return dst, false, fmt.Errorf("block %s: %w", c, err)
	}
	if e.size > max {
		return dst, false, nil
	}
	if !e.ref {
		return append(dst, e.inline...), true, nil
	}
	out, err = r.appendParts(dst, e)
	if err != nil {
		return dst, false, blockErr(c, err)
	}
	return out, true, nil
}

// seekIndex positions the iterator at index key k, reporting whether it
// is there.
func (r *Reader) seekIndex(k []byte) bool {
	if r.ordered {
		return r.it.SeekGE(k) && bytes.Equal(r.it.Key(), k)
	}
	return r.it.SeekPrefixGE(k)
}

// open opens the iterators if there are none, or fresh ones every
// readerSpan reads. The data iterator is a clone of the index one, so
// both see the same view of the store.
func (r *Reader) open() error {
	if r.n++; r.n > readerSpan {
		r.Reset()
	}
	if r.it != nil {
		return nil
	}
	it, err := r.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixIndex}, UpperBound: []byte{prefixIndex + 1}})
	if err != nil {
		return err
	}
	data, err := it.Clone(pebble.CloneOptions{IterOptions: &pebble.IterOptions{LowerBound: []byte{prefixData}, UpperBound: []byte{prefixData + 1}}})
	if err != nil {
		it.Close()
		return err
	}
	r.it, r.data, r.n = it, data, 1
	return nil
}

// appendParts appends the data keys of the ingested block e. It seeks
// with SeekGE, not SeekPrefixGE: a peer asks for a file's leaves in the
// order they were stored, and a forward SeekGE steps on from where the
// iterator is instead of checking bloom filters.
func (r *Reader) appendParts(dst []byte, e entry) ([]byte, error) {
	var kb [11]byte
	kb[0] = prefixData
	binary.BigEndian.PutUint64(kb[1:9], e.seq)
	for i := range e.parts() {
		k := kb[:9]
		if i > 0 {
			binary.BigEndian.PutUint16(kb[9:], uint16(i))
			k = kb[:11]
		}
		if !r.data.SeekGE(k) || !bytes.Equal(r.data.Key(), k) {
			if err := r.data.Error(); err != nil {
				return dst, err
			}
			return dst, fmt.Errorf("index points at missing data")
		}
		v := r.data.Value()
		if len(v) != e.partLen(i) {
			return dst, fmt.Errorf("stored part %d is %d bytes, index says %d", i, len(v), e.partLen(i))
		}
		dst = append(dst, v...)
	}
	return dst, nil
}
