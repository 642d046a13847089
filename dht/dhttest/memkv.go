package dhttest

import (
	"bytes"
	"slices"
	"sync"

	"github.com/share-p2p/share/errs"
)

// MemKV is a share.KV in memory, for the value and provider stores of
// simulated nodes. The zero value is empty and ready.
type MemKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Get implements share.KV.
func (k *MemKV) Get(key []byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[string(key)]
	if !ok {
		return nil, errs.Errorf(errs.NotFound, "key %q not found", key)
	}
	return bytes.Clone(v), nil
}

// Set implements share.KV.
func (k *MemKV) Set(key, val []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string][]byte{}
	}
	k.m[string(key)] = bytes.Clone(val)
	return nil
}

// Delete implements share.KV.
func (k *MemKV) Delete(key []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, string(key))
	return nil
}

// Iterate implements share.KV: in key order, over a snapshot, so fn may
// change the store.
func (k *MemKV) Iterate(fn func(key, val []byte) error) error {
	k.mu.Lock()
	keys := make([]string, 0, len(k.m))
	for key := range k.m {
		keys = append(keys, key)
	}
	k.mu.Unlock()
	slices.Sort(keys)
	for _, key := range keys {
		v, err := k.Get([]byte(key))
		if err != nil {
			continue
		}
		if err := fn([]byte(key), v); err != nil {
			return err
		}
	}
	return nil
}
