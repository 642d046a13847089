// Package share states the core types and interfaces of the system in one
// place, as a map for a newcomer: what a block is, how blocks are read and
// stored, the key-value store the small stores (pins, provider records,
// addresses) live in, and the stream host every network protocol runs on.
//
// Everything else implements or consumes these: the blockstore, the
// in-memory store of the tests, the fetcher's network-backed getter and
// every wrapper are Getters (one conformance suite, package storetest, runs
// them all); the DAG reader, the gateway, pins and gc take a Getter and do
// not care where blocks come from. Errors carry a kind (package errs) that
// every surface maps to what it shows: the CLI's line and exit status, the
// daemon API's JSON, the gateway's HTTP status.
package share

import (
	"context"

	"github.com/ipfs/go-cid"
)

// Block is a block's bytes as a Getter returns them.
type Block struct {
	// Data is the block's bytes. The caller does not modify it, and does
	// not use it after Release.
	Data []byte
	// Verified says Data was checked against the block's CID in this
	// process (a network fetch hashes every block as it arrives), so a
	// reader need not hash it again. Blocks read from storage are never
	// verified: the disk may have rotted.
	Verified bool

	release func([]byte)
}

// NewBlock returns a block of data. release, if not nil, is called with
// data by Release, to recycle its buffer.
func NewBlock(data []byte, verified bool, release func([]byte)) Block {
	return Block{Data: data, Verified: verified, release: release}
}

// Release hands the block's buffer back to its getter: the caller holds no
// reference to Data any more, which may hold another block's bytes after
// it. Calling it is optional (an unreleased buffer is garbage collected)
// and it may be called once; the zero Block releases nothing.
func (b Block) Release() {
	if b.release != nil {
		b.release(b.Data)
	}
}

// Getter reads blocks. It is the one interface every block source and
// wrapper implements; there are no optional ones, and a wrapper passes its
// getter's blocks on as they are, Verified and release included. Package
// storetest checks an implementation against this contract.
type Getter interface {
	// Get returns the block c. A missing block is an error of kind
	// errs.NotFound. Each call returns a block of its own: releasing one
	// never changes another that is still held, even of the same CID.
	Get(ctx context.Context, c cid.Cid) (Block, error)
	// Has reports whether the block c can be read without waiting for the
	// network (walks use it to check leaves without reading them).
	Has(ctx context.Context, c cid.Cid) (bool, error)
}

// Putter stores blocks.
type Putter interface {
	// Put stores data under c. The caller may reuse data once Put returns,
	// so an implementation that keeps it must copy it.
	Put(ctx context.Context, c cid.Cid, data []byte) error
}

// KV is a small persistent key-value store: one keyspace of the repository
// (pins, provider records, peer addresses). A missing key is an error of
// kind errs.NotFound.
type KV interface {
	Get(key []byte) ([]byte, error)
	Set(key, val []byte) error
	Delete(key []byte) error
	// Iterate calls fn for every key in order until fn returns an error,
	// which Iterate returns. fn must not keep key or val.
	Iterate(fn func(key, val []byte) error) error
}
