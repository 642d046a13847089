package dag

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Codecs of the blocks this package writes and reads.
const (
	Raw   = cid.Raw         // 0x55: a leaf, the chunk's bytes as they are
	DagPB = cid.DagProtobuf // 0x70: a dag-pb node carrying UnixFS data

	hashBLAKE3 = mh.BLAKE3   // 0x1e, with a 32-byte digest
	hashSHA256 = mh.SHA2_256 // 0x12, accepted when verifying
)

// Sum returns the CIDv1 of data under codec, hashed with BLAKE3-256:
// share's default Format (Format.sum makes the others).
func Sum(codec uint64, data []byte) cid.Cid {
	d := blake3Sum256(data)
	var m [2 + len(d)]byte
	m[0], m[1] = byte(hashBLAKE3), byte(len(d)) // both varints fit in one byte
	copy(m[2:], d[:])
	return cid.NewCidV1(codec, m[:])
}

// Verify checks that data hashes to c. It accepts BLAKE3-256 and SHA2-256
// multihashes; a mismatch is an error wrapping ErrHashMismatch that names
// the CID.
func Verify(c cid.Cid, data []byte) error {
	if !c.Defined() {
		return fmt.Errorf("verify: %w: undefined CID", ErrInvalidNode)
	}
	dec, err := mh.Decode(c.Hash())
	if err != nil {
		return fmt.Errorf("block %s: %w: %v", c, ErrInvalidNode, err)
	}
	var ok bool
	switch {
	case dec.Code == hashBLAKE3 && dec.Length == 32:
		d := blake3Sum256(data)
		ok = subtle.ConstantTimeCompare(d[:], dec.Digest) == 1
	case dec.Code == hashSHA256 && dec.Length == 32:
		d := sha256.Sum256(data)
		ok = subtle.ConstantTimeCompare(d[:], dec.Digest) == 1
	default:
		return fmt.Errorf("block %s: %w hash %s-%d", c, ErrUnsupported, dec.Name, dec.Length*8)
	}
	if !ok {
		return fmt.Errorf("block %s: %w", c, ErrHashMismatch)
	}
	return nil
}
