package dag

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
)

// PBNode is a dag-pb node. Marshal writes it exactly as kubo does: links
// first, then data; DecodePBNode accepts only that canonical form.
type PBNode struct {
	Links []PBLink
	Data  []byte // nil when absent; an empty non-nil slice is written
}

// PBLink is a link of a dag-pb node. The zero values of NameAbsent and
// TsizeAbsent write both fields, as kubo does even for the empty names of
// file links.
type PBLink struct {
	Hash        cid.Cid
	Name        string
	Tsize       uint64
	NameAbsent  bool // the Name field is not written
	TsizeAbsent bool // the Tsize field is not written
}

// dag-pb field numbers.
const (
	pbNodeData  = 1
	pbNodeLinks = 2
	pbLinkHash  = 1
	pbLinkName  = 2
	pbLinkTsize = 3
)

// Marshal returns the canonical encoding of n.
func (n *PBNode) Marshal() []byte {
	size := 0
	for i := range n.Links {
		l := n.Links[i].size()
		size += protowire.SizeTag(pbNodeLinks) + protowire.SizeBytes(l)
	}
	if n.Data != nil {
		size += protowire.SizeTag(pbNodeData) + protowire.SizeBytes(len(n.Data))
	}
	b := make([]byte, 0, size)
	for i := range n.Links {
		l := &n.Links[i]
		b = protowire.AppendTag(b, pbNodeLinks, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(l.size()))
		b = l.append(b)
	}
	if n.Data != nil {
		b = protowire.AppendTag(b, pbNodeData, protowire.BytesType)
		b = protowire.AppendBytes(b, n.Data)
	}
	return b
}

func (l *PBLink) size() int {
	n := protowire.SizeTag(pbLinkHash) + protowire.SizeBytes(l.Hash.ByteLen())
	if !l.NameAbsent {
		n += protowire.SizeTag(pbLinkName) + protowire.SizeBytes(len(l.Name))
	}
	if !l.TsizeAbsent {
		n += protowire.SizeTag(pbLinkTsize) + protowire.SizeVarint(l.Tsize)
	}
	return n
}

func (l *PBLink) append(b []byte) []byte {
	b = protowire.AppendTag(b, pbLinkHash, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(l.Hash.ByteLen()))
	b = append(b, l.Hash.KeyString()...)
	if !l.NameAbsent {
		b = protowire.AppendTag(b, pbLinkName, protowire.BytesType)
		b = protowire.AppendString(b, l.Name)
	}
	if !l.TsizeAbsent {
		b = protowire.AppendTag(b, pbLinkTsize, protowire.VarintType)
		b = protowire.AppendVarint(b, l.Tsize)
	}
	return b
}

// DecodePBNode decodes a dag-pb block strictly: fields in canonical order
// (links, then data), no unknown or repeated fields, the expected wire
// types, minimal varints, and every link hash a valid CID. Errors wrap
// ErrInvalidNode. Data aliases b.
func DecodePBNode(b []byte) (*PBNode, error) {
	n := &PBNode{}
	for len(b) > 0 {
		num, typ, v, rest, err := consumeField(b)
		if err != nil {
			return nil, err
		}
		b = rest
		switch {
		case num == pbNodeLinks && typ == protowire.BytesType:
			if n.Data != nil {
				return nil, invalidf("dag-pb: link after data")
			}
			l, err := decodePBLink(v)
			if err != nil {
				return nil, fmt.Errorf("dag-pb link %d: %w", len(n.Links), err)
			}
			n.Links = append(n.Links, l)
		case num == pbNodeData && typ == protowire.BytesType:
			if n.Data != nil {
				return nil, invalidf("dag-pb: duplicate data")
			}
			n.Data = v[:len(v):len(v)]
		default:
			return nil, invalidf("dag-pb: unexpected field %d (wire type %d)", num, typ)
		}
	}
	return n, nil
}

func decodePBLink(b []byte) (PBLink, error) {
	l := PBLink{NameAbsent: true, TsizeAbsent: true}
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, v, rest, err := consumeField(b)
		if err != nil {
			return PBLink{}, err
		}
		b = rest
		if num <= last {
			return PBLink{}, invalidf("field %d out of order or repeated", num)
		}
		last = num
		switch {
		case num == pbLinkHash && typ == protowire.BytesType:
			c, err := cid.Cast(v)
			if err != nil {
				return PBLink{}, invalidf("hash: %v", err)
			}
			l.Hash = c
		case num == pbLinkName && typ == protowire.BytesType:
			l.Name, l.NameAbsent = string(v), false
		case num == pbLinkTsize && typ == protowire.VarintType:
			l.Tsize, l.TsizeAbsent = varintValue(v), false
		default:
			return PBLink{}, invalidf("unexpected field %d (wire type %d)", num, typ)
		}
	}
	if !l.Hash.Defined() {
		return PBLink{}, invalidf("missing hash")
	}
	return l, nil
}

// consumeField reads one field of b. For bytes fields v is the payload; for
// varint fields v is the minimal varint encoding (see varintValue); for
// fixed32 fields v holds its four bytes.
func consumeField(b []byte) (num protowire.Number, typ protowire.Type, v, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, nil, invalidf("bad tag: %v", protowire.ParseError(n))
	}
	if n != protowire.SizeTag(num) {
		return 0, 0, nil, nil, invalidf("non-minimal tag")
	}
	b = b[n:]
	switch typ {
	case protowire.VarintType:
		x, m := protowire.ConsumeVarint(b)
		if m < 0 {
			return 0, 0, nil, nil, invalidf("field %d: %v", num, protowire.ParseError(m))
		}
		if m != protowire.SizeVarint(x) {
			return 0, 0, nil, nil, invalidf("field %d: non-minimal varint", num)
		}
		return num, typ, b[:m], b[m:], nil
	case protowire.BytesType:
		x, m := protowire.ConsumeVarint(b)
		if m < 0 {
			return 0, 0, nil, nil, invalidf("field %d: %v", num, protowire.ParseError(m))
		}
		if m != protowire.SizeVarint(x) {
			return 0, 0, nil, nil, invalidf("field %d: non-minimal length", num)
		}
		if x > uint64(len(b)-m) {
			return 0, 0, nil, nil, invalidf("field %d: truncated", num)
		}
		return num, typ, b[m : m+int(x)], b[m+int(x):], nil
	case protowire.Fixed32Type:
		if len(b) < 4 {
			return 0, 0, nil, nil, invalidf("field %d: truncated", num)
		}
		return num, typ, b[:4], b[4:], nil
	default:
		return 0, 0, nil, nil, invalidf("field %d: unexpected wire type %d", num, typ)
	}
}

// varintValue decodes a varint that consumeField has already validated.
func varintValue(v []byte) uint64 {
	x, _ := protowire.ConsumeVarint(v)
	return x
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidNode, fmt.Sprintf(format, args...))
}
