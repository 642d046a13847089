package dag

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
)

// MemStore is a share.Getter and share.Putter that keeps blocks in memory,
// keyed by multihash as the blockstore does. It is meant for tests. It is
// safe for concurrent use.
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

// Get returns the block stored under c's multihash, or an error of kind
// errs.NotFound. Its bytes are the stored ones, not a copy: callers must
// not modify them.
func (s *MemStore) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	b, err := s.get(ctx, c)
	return share.NewBlock(b, false, nil), err
}

func (s *MemStore) get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	b, ok := s.m[string(c.Hash())]
	s.mu.RUnlock()
	if !ok {
		return nil, notFound(c)
	}
	return b, nil
}

// BorrowParts returns the stored block as one part, with nothing to
// release, as blockstore.Store.BorrowParts does (a server sends blocks
// with it).
func (s *MemStore) BorrowParts(ctx context.Context, c cid.Cid) ([][]byte, func(), error) {
	b, err := s.get(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	return [][]byte{b}, func() {}, nil
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
