// Package car reads and writes CAR v1 files (Content Addressable aRchives,
// https://ipld.io/specs/transport/car/carv1/): a varint-prefixed dag-cbor
// header naming the root CIDs, then one varint-prefixed section per block
// holding the block's CID and bytes.
//
// Write exports the DAGs under some roots from a share.Getter, parents
// before children; NewReader reads one back with hard size limits and
// verifies every block against its CID; Import stores a file's blocks
// through a share.Putter.
package car

import (
	"errors"
	"fmt"
)

const (
	// MaxHeaderSize is the largest header a Reader accepts.
	MaxHeaderSize = 1 << 20
	// MaxBlockSize is the largest block a Reader accepts: the largest chunk
	// the importer makes, which is also the exchange protocol's limit.
	MaxBlockSize = 4 << 20
	// MaxCIDSize is the largest CID a Reader accepts.
	MaxCIDSize = 128
	// maxSectionSize bounds a section's length prefix.
	maxSectionSize = MaxCIDSize + MaxBlockSize
)

var (
	// ErrMalformed means the bytes are not a well-formed CAR v1 file: a bad
	// header, a bad CID, a section over the limits, or a truncated file
	// (which also wraps io.ErrUnexpectedEOF).
	ErrMalformed = errors.New("malformed CAR")
	// ErrUnsupportedVersion means a CAR file of a version other than 1.
	ErrUnsupportedVersion = errors.New("unsupported CAR version")
)

func malformedf(format string, args ...any) error {
	return fmt.Errorf("car: %w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
