package blockstore

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
)

var _ share.KV = (*Keyspace)(nil)

// Keyspace is a small metadata keyspace (pins, provider records, peer
// addresses) in the store's database, under a one-byte prefix. Writes are
// synced. It is safe for concurrent use.
type Keyspace struct {
	s      *Store
	prefix byte
}

// Keyspace returns the keyspace under prefix. The prefixes 'b' to 'j' belong
// to the block store; Keyspace panics on them.
func (s *Store) Keyspace(prefix byte) *Keyspace {
	if prefix >= reservedFirst && prefix <= reservedLast {
		panic(fmt.Sprintf("blockstore: keyspace prefix %q is reserved for blocks", prefix))
	}
	return &Keyspace{s: s, prefix: prefix}
}

func (k *Keyspace) key(key []byte) []byte {
	b := make([]byte, 1+len(key))
	b[0] = k.prefix
	copy(b[1:], key)
	return b
}

// Get returns a copy of the value of key, or an error of kind
// errs.NotFound.
func (k *Keyspace) Get(key []byte) ([]byte, error) {
	v, closer, err := k.s.db.Get(k.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errs.Errorf(errs.NotFound, "key %q: not found", key)
	}
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", key, err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// Set stores val under key, durably.
func (k *Keyspace) Set(key, val []byte) error {
	if err := k.s.writable(); err != nil {
		return err
	}
	if err := k.s.db.Set(k.key(key), val, pebble.Sync); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	return nil
}

// SetMany stores vals[i] under keys[i] for every i, durably, in one synced
// write: all of them or, after a crash, none.
func (k *Keyspace) SetMany(keys, vals [][]byte) error {
	if len(keys) != len(vals) {
		return fmt.Errorf("blockstore: SetMany: %d keys, %d values", len(keys), len(vals))
	}
	if err := k.s.writable(); err != nil {
		return err
	}
	b := k.s.db.NewBatch()
	defer b.Close()
	for i, key := range keys {
		if err := b.Set(k.key(key), vals[i], nil); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("blockstore: SetMany: %w", err)
	}
	return nil
}

// Delete removes key, durably. A missing key is not an error.
func (k *Keyspace) Delete(key []byte) error {
	if err := k.s.writable(); err != nil {
		return err
	}
	if err := k.s.db.Delete(k.key(key), pebble.Sync); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	return nil
}

// Iterate calls fn for every key (without the prefix) in key order. key and
// val are valid only during the call. It stops at the first error fn returns.
func (k *Keyspace) Iterate(fn func(key, val []byte) error) error {
	o := &pebble.IterOptions{LowerBound: []byte{k.prefix}}
	if k.prefix < 0xff {
		o.UpperBound = []byte{k.prefix + 1}
	}
	it, err := k.s.db.NewIter(o)
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key()[1:], v); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}
