package car

import (
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Header is a CAR header.
type Header struct {
	Version uint64
	Roots   []cid.Cid
}

// CBOR major types used by the header.
const (
	majUint  = 0
	majBytes = 2
	majText  = 3
	majArray = 4
	majMap   = 5
	majTag   = 6

	tagCID = 42 // dag-cbor's tag for a link
)

// encodeHeader returns the dag-cbor encoding of {roots, version: 1}, keys
// in dag-cbor's canonical order (shorter keys first: "roots" before
// "version"), each CID as tag 42 over a byte string holding 0x00 and the
// CID's binary form.
func encodeHeader(roots []cid.Cid) []byte {
	b := appendHead(nil, majMap, 2)
	b = appendText(b, "roots")
	b = appendHead(b, majArray, uint64(len(roots)))
	for _, c := range roots {
		cb := c.Bytes()
		b = appendHead(b, majTag, tagCID)
		b = appendHead(b, majBytes, uint64(len(cb)+1))
		b = append(b, 0)
		b = append(b, cb...)
	}
	b = appendText(b, "version")
	return appendHead(b, majUint, 1)
}

func appendText(b []byte, s string) []byte {
	return append(appendHead(b, majText, uint64(len(s))), s...)
}

// appendHead appends a CBOR head in its shortest form, as dag-cbor requires.
func appendHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xff:
		return append(b, m|24, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), v)
}

// cborReader decodes the small subset of dag-cbor a header uses, strictly:
// definite lengths and shortest-form heads only.
type cborReader struct {
	b []byte
}

func (r *cborReader) head() (major byte, v uint64, err error) {
	if len(r.b) == 0 {
		return 0, 0, malformedf("header: truncated")
	}
	major, info := r.b[0]>>5, r.b[0]&0x1f
	r.b = r.b[1:]
	var n int
	switch {
	case info < 24:
		return major, uint64(info), nil
	case info == 24:
		n = 1
	case info == 25:
		n = 2
	case info == 26:
		n = 4
	case info == 27:
		n = 8
	default:
		return 0, 0, malformedf("header: indefinite length or reserved CBOR head %#x", info)
	}
	if len(r.b) < n {
		return 0, 0, malformedf("header: truncated")
	}
	for _, x := range r.b[:n] {
		v = v<<8 | uint64(x)
	}
	r.b = r.b[n:]
	if least := [...]uint64{1: 24, 2: 0x100, 4: 0x10000, 8: 0x100000000}[n]; v < least {
		return 0, 0, malformedf("header: CBOR integer %d not in its shortest form", v)
	}
	return major, v, nil
}

// expect reads a head of the given major type.
func (r *cborReader) expect(major byte, what string) (uint64, error) {
	m, v, err := r.head()
	if err != nil {
		return 0, err
	}
	if m != major {
		return 0, malformedf("header: %s: CBOR major type %d, want %d", what, m, major)
	}
	return v, nil
}

// bytes reads n bytes of a string's content.
func (r *cborReader) bytes(n uint64, what string) ([]byte, error) {
	if n > uint64(len(r.b)) {
		return nil, malformedf("header: %s: truncated", what)
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s, nil
}

// decodeHeader decodes and checks a header: a map with "version" and, for
// version 1, "roots". A CARv2 pragma (version 2) is ErrUnsupportedVersion.
func decodeHeader(b []byte) (Header, error) {
	r := &cborReader{b: b}
	n, err := r.expect(majMap, "top level")
	if err != nil {
		return Header{}, err
	}
	var h Header
	var hasVersion, hasRoots bool
	for range n {
		kl, err := r.expect(majText, "key")
		if err != nil {
			return Header{}, err
		}
		k, err := r.bytes(kl, "key")
		if err != nil {
			return Header{}, err
		}
		switch string(k) {
		case "version":
			if hasVersion {
				return Header{}, malformedf("header: duplicate key %q", k)
			}
			hasVersion = true
			if h.Version, err = r.expect(majUint, "version"); err != nil {
				return Header{}, err
			}
		case "roots":
			if hasRoots {
				return Header{}, malformedf("header: duplicate key %q", k)
			}
			hasRoots = true
			if h.Roots, err = r.roots(); err != nil {
				return Header{}, err
			}
		default:
			return Header{}, malformedf("header: unknown key %q", k)
		}
	}
	if len(r.b) != 0 {
		return Header{}, malformedf("header: %d bytes after the map", len(r.b))
	}
	if !hasVersion {
		return Header{}, malformedf("header: no version")
	}
	if h.Version != 1 {
		return Header{}, fmt.Errorf("car: %w %d (only CARv1 is supported)", ErrUnsupportedVersion, h.Version)
	}
	if !hasRoots {
		return Header{}, malformedf("header: no roots")
	}
	return h, nil
}

func (r *cborReader) roots() ([]cid.Cid, error) {
	n, err := r.expect(majArray, "roots")
	if err != nil {
		return nil, err
	}
	// Every root takes several bytes, so n is bounded by the header size.
	if n > uint64(len(r.b)) {
		return nil, malformedf("header: roots: truncated")
	}
	roots := make([]cid.Cid, 0, n)
	for range n {
		tag, err := r.expect(majTag, "root")
		if err != nil {
			return nil, err
		}
		if tag != tagCID {
			return nil, malformedf("header: root: CBOR tag %d, want %d", tag, tagCID)
		}
		l, err := r.expect(majBytes, "root")
		if err != nil {
			return nil, err
		}
		b, err := r.bytes(l, "root")
		if err != nil {
			return nil, err
		}
		if len(b) == 0 || b[0] != 0 {
			return nil, malformedf("header: root: no 0x00 multibase prefix")
		}
		c, err := cid.Cast(b[1:])
		if err != nil {
			return nil, malformedf("header: root: %v", err)
		}
		roots = append(roots, c)
	}
	return roots, nil
}
