// Package dag turns byte streams and directory trees into content-addressed
// DAGs and back. It owns the content model: CIDv1 identifiers with BLAKE3-256
// hashes, raw leaves, dag-pb nodes carrying UnixFS data (encoded byte for byte
// as kubo does), the balanced importer and the verifying, seekable reader.
// The importer writes kubo's other formats too (Format: CIDv0, SHA2-256,
// dag-pb leaves), and the readers read any of them.
//
// The package stores and fetches blocks only through share.Putter and
// share.Getter, so the same code reads from the local blockstore, from the
// network or from a MemStore in tests. Readers verify every block against
// its CID unless the getter says it already has (share.Block.Verified),
// and release the blocks they are done with.
package dag

import (
	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/errs"
)

var (
	// ErrHashMismatch means a block's bytes do not hash to its CID
	// (kind errs.Corrupt).
	ErrHashMismatch = errs.New(errs.Corrupt, "hash mismatch")
	// ErrInvalidNode means a block does not decode as the node its CID
	// says it is, or the DAG it belongs to is inconsistent (sizes that do
	// not add up, a bad entry name) (kind errs.Corrupt).
	ErrInvalidNode = errs.New(errs.Corrupt, "invalid node")
	// ErrUnsupported means a CID uses a hash function, codec or UnixFS
	// feature this package does not handle (kind errs.Unsupported).
	ErrUnsupported = errs.New(errs.Unsupported, "unsupported")
	// ErrNotFile means a file was expected and the node is something else
	// (kind errs.Invalid).
	ErrNotFile = errs.New(errs.Invalid, "not a file")
	// ErrNotDir means a directory was expected and the node is something
	// else (kind errs.Invalid).
	ErrNotDir = errs.New(errs.Invalid, "not a directory")
	// ErrNoLink means a directory has no entry of the name looked up
	// (kind errs.NotFound).
	ErrNoLink = errs.New(errs.NotFound, "no such file or directory")
)

// notFound is the error of a missing block: kind errs.NotFound, naming c.
func notFound(c cid.Cid) error { return errs.E(errs.NotFound, c) }
