package dag

import (
	"crypto/sha256"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/errs"
)

// Format says how an import makes its blocks and CIDs. The zero Format is
// share's default: CIDv1, BLAKE3-256, raw leaves. Every setting of kubo's
// `ipfs add --cid-version --hash --raw-leaves` is a Format, and an import
// with it gives kubo's CIDs (for the same chunker).
type Format struct {
	// CIDv0 gives dag-pb nodes version-0 CIDs (Qm...), kubo's default. It
	// requires SHA2-256. Raw leaves keep CIDv1, as kubo's do: a raw block
	// has no version-0 CID.
	CIDv0 bool
	// Hash is the multihash function: 0 or mh.BLAKE3 for BLAKE3-256,
	// mh.SHA2_256 for SHA2-256 (kubo's default).
	Hash uint64
	// DagPBLeaves writes each chunk as a dag-pb UnixFS File node holding
	// its bytes (kubo's --raw-leaves=false) instead of a raw block.
	DagPBLeaves bool
	// PreserveMode and PreserveMtime store each file's and directory's
	// permissions and each file's, directory's and symlink's modification
	// time in its root node (UnixFS 1.5 metadata, kubo's --preserve-mode
	// and --preserve-mtime). Metadata needs dag-pb leaves: a raw block
	// has nowhere to hold it.
	PreserveMode  bool
	PreserveMtime bool
}

// metadata reports whether f stores file metadata.
func (f Format) metadata() bool { return f.PreserveMode || f.PreserveMtime }

// KuboDefault is the Format of kubo's `ipfs add` with no flags: CIDv0,
// SHA2-256, dag-pb leaves (with 256 KiB chunks, KuboChunkSize).
var KuboDefault = Format{CIDv0: true, Hash: mh.SHA2_256, DagPBLeaves: true}

// KuboChunkSize is kubo's default chunk size, size-262144.
const KuboChunkSize = 256 << 10

// FormatOptions are kubo's add settings as a user gives them; each field
// may be unset, and Format fills in the rest as kubo does.
type FormatOptions struct {
	CIDVersion *int   // 0 or 1; nil: 1
	Hash       string // "blake3" or "sha2-256"; "": sha2-256 for CIDv0, else blake3
	RawLeaves  *bool  // nil: false for CIDv0 or with metadata, true otherwise
	// PreserveMode and PreserveMtime are kubo's --preserve-mode and
	// --preserve-mtime (Format.PreserveMode).
	PreserveMode, PreserveMtime bool
}

// Format resolves o by kubo's rules (core/coreiface/options, UnixfsAdd):
// CIDv0 requires sha2-256, so CID version 0 with another hash is an error
// of kind errs.Invalid naming both flags; an unset hash is sha2-256 with
// CIDv0 and share's BLAKE3 otherwise; unset raw leaves are off for CIDv0
// and on for CIDv1; an unset CID version is 1 (share's default, where kubo
// would pick 0 for sha2-256). Raw leaves with CIDv0 are allowed, as kubo
// allows them. Metadata (PreserveMode, PreserveMtime) turns raw leaves
// off, and asking for both is an error, as kubo says.
func (o FormatOptions) Format() (Format, error) {
	var f Format
	v := 1
	if o.CIDVersion != nil {
		v = *o.CIDVersion
	}
	switch v {
	case 0:
		f.CIDv0, f.Hash = true, mh.SHA2_256
	case 1:
	default:
		return Format{}, errs.Errorf(errs.Invalid, "--cid-version %d: want 0 or 1", v)
	}
	if o.Hash != "" {
		h, err := HashCode(o.Hash)
		if err != nil {
			return Format{}, err
		}
		if f.CIDv0 && h != mh.SHA2_256 {
			return Format{}, errs.Errorf(errs.Invalid, "--cid-version 0 and --hash %s: CIDv0 supports only sha2-256", o.Hash)
		}
		f.Hash = h
	}
	f.PreserveMode, f.PreserveMtime = o.PreserveMode, o.PreserveMtime
	f.DagPBLeaves = f.CIDv0 || f.metadata()
	if o.RawLeaves != nil {
		if *o.RawLeaves && f.metadata() {
			return Format{}, errs.Errorf(errs.Invalid, "raw leaves cannot carry UnixFS metadata (--preserve-mode, --preserve-mtime): leave --raw-leaves (and Import.UnixFSRawLeaves) unset")
		}
		f.DagPBLeaves = !*o.RawLeaves
	}
	return f, nil
}

// HashCode returns the multihash code of a hash function named as kubo
// names it: "blake3" or "sha2-256", the two this package produces.
func HashCode(name string) (uint64, error) {
	switch name {
	case "blake3":
		return mh.BLAKE3, nil
	case "sha2-256":
		return mh.SHA2_256, nil
	}
	return 0, errs.Errorf(errs.Invalid, "--hash %q: want blake3 or sha2-256", name)
}

// String describes f with kubo's flags.
func (f Format) String() string {
	h := "blake3"
	if f.Hash == mh.SHA2_256 {
		h = "sha2-256"
	}
	v := 1
	if f.CIDv0 {
		v = 0
	}
	s := fmt.Sprintf("--cid-version=%d --hash=%s --raw-leaves=%t", v, h, !f.DagPBLeaves)
	if f.PreserveMode {
		s += " --preserve-mode"
	}
	if f.PreserveMtime {
		s += " --preserve-mtime"
	}
	return s
}

// check reports a Format that no flags give.
func (f Format) check() error {
	switch {
	case f.Hash != 0 && f.Hash != mh.BLAKE3 && f.Hash != mh.SHA2_256:
		return fmt.Errorf("%w hash %#x", ErrUnsupported, f.Hash)
	case f.CIDv0 && f.Hash != mh.SHA2_256:
		return errs.Errorf(errs.Invalid, "CIDv0 supports only sha2-256")
	case f.metadata() && !f.DagPBLeaves:
		return errs.Errorf(errs.Invalid, "raw leaves cannot carry UnixFS metadata")
	}
	return nil
}

// sum returns the CID of a block of codec under f.
func (f Format) sum(codec uint64, data []byte) cid.Cid {
	if f.Hash != mh.SHA2_256 {
		return Sum(codec, data)
	}
	d := sha256.Sum256(data)
	var m [2 + len(d)]byte
	m[0], m[1] = byte(hashSHA256), byte(len(d))
	copy(m[2:], d[:])
	if f.CIDv0 && codec == DagPB {
		return cid.NewCidV0(m[:])
	}
	return cid.NewCidV1(codec, m[:])
}

// leafCodec is the codec of f's leaves.
func (f Format) leafCodec() uint64 {
	if f.DagPBLeaves {
		return DagPB
	}
	return Raw
}

// A dag-pb leaf is PBNode{Data: UnixFS{Type: File, Data: chunk, FileSize:
// len(chunk)}}, as kubo writes it: no links, no blocksizes, and no Data
// field for an empty chunk. The chunk sits in the middle of the block, so
// the importer reads it leafHead bytes into its buffer, with leafTail bytes
// free after it, and wraps it in place: no copy of the chunk.
const (
	leafHead = 16 // >= 1+5 (node tag, length) + 2 (type) + 1+5 (data tag, length)
	leafTail = 8  // >= 1+5 (filesize tag, varint)
)

// wrapLeaf turns the chunk of n bytes at buf[leafHead:] into its dag-pb
// leaf block, written around it in buf, and returns the block.
func wrapLeaf(buf []byte, n int) []byte {
	un := uint64(n)
	fsLen := 2 + 1 + protowire.SizeVarint(un)
	if n > 0 {
		fsLen += 1 + protowire.SizeVarint(un) + n
	}
	var h [leafHead]byte
	hdr := protowire.AppendTag(h[:0], pbNodeData, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(fsLen))
	hdr = appendVarintField(hdr, fsType, uint64(TypeFile))
	if n > 0 {
		hdr = protowire.AppendTag(hdr, fsData, protowire.BytesType)
		hdr = protowire.AppendVarint(hdr, un)
	}
	start := leafHead - len(hdr)
	copy(buf[start:], hdr)
	blk := appendVarintField(buf[start:leafHead+n], fsFileSize, un)
	return blk
}
