package dag

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
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
		num, typ, v, _, size, err := nextField(b)
		if err != nil {
			return nil, err
		}
		b = b[size:]
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
		num, typ, v, x, n, err := nextField(b)
		if err != nil {
			return PBLink{}, err
		}
		b = b[n:]
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
			l.Tsize, l.TsizeAbsent = x, false
		default:
			return PBLink{}, invalidf("unexpected field %d (wire type %d)", num, typ)
		}
	}
	if !l.Hash.Defined() {
		return PBLink{}, invalidf("missing hash")
	}
	return l, nil
}

// nextField reads the field at the start of b (see pbwire.Next), which
// must be written in its shortest form. Errors wrap ErrInvalidNode.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, v []byte, x uint64, n int, err error) {
	num, typ, v, x, n, err = pbwire.Next(b)
	if err == nil && !pbwire.Minimal(num, typ, v, x, n) {
		err = fmt.Errorf("field %d: %w", num, pbwire.ErrNonCanonical)
	}
	if err != nil {
		return 0, 0, nil, 0, 0, fmt.Errorf("%w: %v", ErrInvalidNode, err)
	}
	return num, typ, v, x, n, nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidNode, fmt.Sprintf(format, args...))
}
