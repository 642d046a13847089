package blockstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The block count: how many blocks the index holds and the sum of their
// sizes, kept under countKey and written in the same Pebble batch as every
// change to the index (under indexMu), so that after a crash it says what
// the index says. Stat reads it instead of scanning a million entries.
// A repository written before the count existed is counted once at Open.

// countKey is the key of the block count (prefix 'c', in the store's
// reserved range).
var countKey = []byte{prefixCount}

// counts are the index's figures, or a change to them.
type counts struct {
	blocks int64
	bytes  int64
}

func (c counts) encode() []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(c.blocks))
	return binary.BigEndian.AppendUint64(v, uint64(c.bytes))
}

func decodeCounts(v []byte) (counts, error) {
	if len(v) != 16 {
		return counts{}, fmt.Errorf("blockstore: bad block count %x", v)
	}
	return counts{int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))}, nil
}

// loadCount reads the block count, or counts the index when there is none
// yet, writing the result unless the store is read-only.
func (s *Store) loadCount() error {
	v, closer, err := s.db.Get(countKey)
	if err == nil {
		c, err := decodeCounts(v)
		closer.Close()
		if err != nil {
			return err
		}
		s.count = c
		return nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	c, err := s.scanCount()
	if err != nil {
		return err
	}
	s.count = c
	if s.readOnly {
		return nil
	}
	return s.db.Set(countKey, c.encode(), pebble.Sync)
}

// scanCount counts the index.
func (s *Store) scanCount() (counts, error) {
	var c counts
	err := s.scan(context.Background(), func(_ []byte, size int) error {
		c.blocks++
		c.bytes += int64(size)
		return nil
	})
	return c, err
}

// addCount records in b, which also holds the index changes of d, the
// count those changes make; the caller holds indexMu and calls
// committedCount(d) once b is committed.
func (s *Store) addCount(b *pebble.Batch, d counts) error {
	if d == (counts{}) {
		return nil
	}
	return b.Set(countKey, counts{s.count.blocks + d.blocks, s.count.bytes + d.bytes}.encode(), nil)
}

// committedCount applies d once its batch is committed (under indexMu).
func (s *Store) committedCount(d counts) {
	s.count.blocks += d.blocks
	s.count.bytes += d.bytes
	s.countNow.Store(&counts{s.count.blocks, s.count.bytes})
}
