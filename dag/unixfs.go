package dag

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Type is a UnixFS node type, as numbered on the wire.
type Type int

// UnixFS node types.
const (
	TypeRaw       Type = 0
	TypeDirectory Type = 1
	TypeFile      Type = 2
	TypeMetadata  Type = 3
	TypeSymlink   Type = 4
	TypeHAMTShard Type = 5
)

func (t Type) String() string {
	switch t {
	case TypeRaw:
		return "raw"
	case TypeDirectory:
		return "directory"
	case TypeFile:
		return "file"
	case TypeMetadata:
		return "metadata"
	case TypeSymlink:
		return "symlink"
	case TypeHAMTShard:
		return "hamt-shard"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// UnixFS is the UnixFS Data message carried in a dag-pb node's Data. The
// Has* flags record whether an optional scalar field is present, so that
// decoding and encoding again gives back the same bytes.
type UnixFS struct {
	Type        Type
	Data        []byte // nil when absent
	FileSize    uint64
	HasFileSize bool
	BlockSizes  []uint64 // written unpacked, one field per size
	HashType    uint64
	HasHashType bool
	Fanout      uint64
	HasFanout   bool
	Mode        uint32
	HasMode     bool
	Mtime       *UnixTime // nil when absent
}

// UnixTime is the UnixFS modification time.
type UnixTime struct {
	Seconds  int64
	Nanos    uint32 // FractionalNanoseconds
	HasNanos bool
}

// UnixFS field numbers.
const (
	fsType       = 1
	fsData       = 2
	fsFileSize   = 3
	fsBlockSizes = 4
	fsHashType   = 5
	fsFanout     = 6
	fsMode       = 7
	fsMtime      = 8
	timeSeconds  = 1
	timeNanos    = 2
)

// Marshal returns the encoding of u, fields in field-number order as kubo
// writes them.
func (u *UnixFS) Marshal() []byte {
	b := make([]byte, 0, 16+len(u.Data)+10*len(u.BlockSizes))
	b = appendVarintField(b, fsType, uint64(u.Type))
	if u.Data != nil {
		b = protowire.AppendTag(b, fsData, protowire.BytesType)
		b = protowire.AppendBytes(b, u.Data)
	}
	if u.HasFileSize {
		b = appendVarintField(b, fsFileSize, u.FileSize)
	}
	for _, s := range u.BlockSizes {
		b = appendVarintField(b, fsBlockSizes, s)
	}
	if u.HasHashType {
		b = appendVarintField(b, fsHashType, u.HashType)
	}
	if u.HasFanout {
		b = appendVarintField(b, fsFanout, u.Fanout)
	}
	if u.HasMode {
		b = appendVarintField(b, fsMode, uint64(u.Mode))
	}
	if u.Mtime != nil {
		var t []byte
		t = appendVarintField(t, timeSeconds, uint64(u.Mtime.Seconds))
		if u.Mtime.HasNanos {
			t = protowire.AppendTag(t, timeNanos, protowire.Fixed32Type)
			t = protowire.AppendFixed32(t, u.Mtime.Nanos)
		}
		b = protowire.AppendTag(b, fsMtime, protowire.BytesType)
		b = protowire.AppendBytes(b, t)
	}
	return b
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// DecodeUnixFS decodes a UnixFS Data message strictly: fields in order,
// Type present and known, no unknown or repeated fields (blocksizes apart,
// which must not be packed), expected wire types, minimal varints. Errors
// wrap ErrInvalidNode. Data aliases b.
func DecodeUnixFS(b []byte) (*UnixFS, error) {
	u := &UnixFS{}
	hasType := false
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, v, x, n, err := nextField(b)
		if err != nil {
			return nil, fmt.Errorf("unixfs: %w", err)
		}
		b = b[n:]
		if num < last || num == last && num != fsBlockSizes {
			return nil, invalidf("unixfs: field %d out of order or repeated", num)
		}
		last = num
		want := protowire.VarintType
		if num == fsData || num == fsMtime {
			want = protowire.BytesType
		}
		if typ != want || num > fsMtime {
			return nil, invalidf("unixfs: unexpected field %d (wire type %d)", num, typ)
		}
		switch num {
		case fsType:
			if x > uint64(TypeHAMTShard) {
				return nil, invalidf("unixfs: unknown type %d", x)
			}
			u.Type, hasType = Type(x), true
		case fsData:
			u.Data = v[:len(v):len(v)]
		case fsFileSize:
			u.FileSize, u.HasFileSize = x, true
		case fsBlockSizes:
			u.BlockSizes = append(u.BlockSizes, x)
		case fsHashType:
			u.HashType, u.HasHashType = x, true
		case fsFanout:
			u.Fanout, u.HasFanout = x, true
		case fsMode:
			if x > math.MaxUint32 {
				return nil, invalidf("unixfs: mode %d overflows", x)
			}
			u.Mode, u.HasMode = uint32(x), true
		case fsMtime:
			t, err := decodeUnixTime(v)
			if err != nil {
				return nil, err
			}
			u.Mtime = t
		}
	}
	if !hasType {
		return nil, invalidf("unixfs: missing type")
	}
	return u, nil
}

func decodeUnixTime(b []byte) (*UnixTime, error) {
	t := &UnixTime{}
	hasSeconds := false
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, _, x, n, err := nextField(b)
		if err != nil {
			return nil, fmt.Errorf("unixfs mtime: %w", err)
		}
		b = b[n:]
		if num <= last {
			return nil, invalidf("unixfs mtime: field %d out of order or repeated", num)
		}
		last = num
		switch {
		case num == timeSeconds && typ == protowire.VarintType:
			t.Seconds, hasSeconds = int64(x), true
		case num == timeNanos && typ == protowire.Fixed32Type:
			t.Nanos, t.HasNanos = uint32(x), true
		default:
			return nil, invalidf("unixfs mtime: unexpected field %d (wire type %d)", num, typ)
		}
	}
	if !hasSeconds {
		return nil, invalidf("unixfs mtime: missing seconds")
	}
	return t, nil
}
