package dag

import (
	"context"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
)

// MemStore is a BlockPutter, BlockGetter and BlockHaser that keeps blocks
// in memory, keyed by multihash as the blockstore does. It is meant for
// tests. It is safe for concurrent use.
type MemStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: make(map[string][]byte)} }

// Put stores a copy of data under c.
func (s *MemStore) Put(ctx context.Context, c cid.Cid, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := append(make([]byte, 0, len(data)), data...)
	s.mu.Lock()
	s.m[string(c.Hash())] = b
	s.mu.Unlock()
	return nil
}

// Get returns the block stored under c's multihash, or an error wrapping
// ErrNotFound. The slice is the stored one: callers must not modify it.
func (s *MemStore) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	b, ok := s.m[string(c.Hash())]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", c, ErrNotFound)
	}
	return b, nil
}

// Has reports whether a block with c's multihash is stored.
func (s *MemStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.RLock()
	_, ok := s.m[string(c.Hash())]
	s.mu.RUnlock()
	return ok, nil
}

// Delete removes the block stored under c's multihash, if any.
func (s *MemStore) Delete(c cid.Cid) {
	s.mu.Lock()
	delete(s.m, string(c.Hash()))
	s.mu.Unlock()
}

// Set stores data under c as it is, without copying or checking it; tests
// use it to plant corrupt blocks.
func (s *MemStore) Set(c cid.Cid, data []byte) {
	s.mu.Lock()
	s.m[string(c.Hash())] = data
	s.mu.Unlock()
}

// Len returns the number of blocks stored.
func (s *MemStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}
