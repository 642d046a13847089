// Package dag turns byte streams and directory trees into content-addressed
// DAGs and back. It owns the content model: CIDv1 identifiers with BLAKE3-256
// hashes, raw leaves, dag-pb nodes carrying UnixFS data (encoded byte for byte
// as kubo does), the balanced importer and the verifying, seekable reader.
//
// The package stores and fetches blocks only through the small BlockPutter
// and BlockGetter interfaces, so the same code reads from the local
// blockstore, from the network or from a MemStore in tests.
package dag

import (
	"context"
	"errors"

	"github.com/ipfs/go-cid"
)

// BlockPutter stores blocks.
type BlockPutter interface {
	// Put stores data under c. The caller may reuse data once Put returns,
	// so an implementation that keeps it must copy it.
	Put(ctx context.Context, c cid.Cid, data []byte) error
}

// BlockGetter fetches blocks. Readers in this package verify every block
// against its CID, so a getter need not.
type BlockGetter interface {
	// Get returns the block c. The caller does not modify the returned
	// slice. A missing block is an error (ErrNotFound or the getter's own).
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
}

// BlockAppender is implemented by getters that can copy a block into a
// buffer the caller owns; sequential readers use it to recycle buffers
// instead of allocating one per block.
type BlockAppender interface {
	GetAppend(ctx context.Context, dst []byte, c cid.Cid) ([]byte, error)
}

// BlockReleaser is implemented by getters that recycle the buffers Get
// returns: a sequential reader calls Release with a leaf once it has
// written it and holds no reference to it any more.
type BlockReleaser interface {
	Release(data []byte)
}

// VerifiedGetter is implemented by getters that can tell which blocks they
// have already verified against their CIDs in this process (a network
// session checks every block as it arrives): readers skip hashing those
// again. Blocks read from storage are never reported verified.
type VerifiedGetter interface {
	GetVerified(ctx context.Context, c cid.Cid) (data []byte, verified bool, err error)
}

// BlockHaser is implemented by getters that can tell cheaply whether they
// hold a block; Walk uses it to check leaves without reading them.
type BlockHaser interface {
	Has(ctx context.Context, c cid.Cid) (bool, error)
}

var (
	// ErrHashMismatch means a block's bytes do not hash to its CID.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrInvalidNode means a block does not decode as the node its CID
	// says it is, or the DAG it belongs to is inconsistent (sizes that do
	// not add up, a bad entry name).
	ErrInvalidNode = errors.New("invalid node")
	// ErrUnsupported means a CID uses a hash function, codec or UnixFS
	// feature this package does not handle.
	ErrUnsupported = errors.New("unsupported")
	// ErrNotFound means a block is absent.
	ErrNotFound = errors.New("block not found")
	// ErrNotFile means a file was expected and the node is something else.
	ErrNotFile = errors.New("not a file")
	// ErrNotDir means a directory was expected and the node is something else.
	ErrNotDir = errors.New("not a directory")
	// ErrNoLink means a directory has no entry of the name looked up.
	ErrNoLink = errors.New("no such file or directory")
)
