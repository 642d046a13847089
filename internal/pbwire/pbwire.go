// Package pbwire walks the fields of a protobuf message. It is the one
// field loop the decoders of our wire formats (dag-pb, bitswap, the DHT,
// pubsub, identify and the other libp2p protocols) share, so that the
// checks of malformed input are written, and fuzzed, once. It decodes the
// wire format only; what a field means stays with each decoder.
package pbwire

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrNonCanonical is the error for a field that is not Minimal.
var ErrNonCanonical = errors.New("non-minimal encoding")

// Next decodes the field at the start of b: its number, its wire type,
// v, the payload of a length-delimited field (it aliases b), x, the value
// of a varint, fixed32 or fixed64 field, and n, the field's length. A
// group is skipped whole (v and x are zero). Errors name the field;
// callers wrap them with their message's error.
//
// Next returns scalars rather than a struct: the compiler copies a
// returned struct through memory in pieces too small to forward to the
// wide loads that read them back, a stall on every field.
func Next(b []byte) (num protowire.Number, typ protowire.Type, v []byte, x uint64, n int, err error) {
	num, typ, tag := protowire.ConsumeTag(b)
	if tag < 0 {
		return 0, 0, nil, 0, 0, parseError(num, codeBadTag+tag)
	}
	b = b[tag:]
	switch typ {
	case protowire.VarintType:
		x, n = protowire.ConsumeVarint(b)
	case protowire.BytesType:
		// ConsumeBytes, without its call.
		var l uint64
		l, n = protowire.ConsumeVarint(b)
		if n >= 0 && l > uint64(len(b)-n) {
			n = codeTruncated
		} else if n >= 0 {
			v, n = b[n:n+int(l)], n+int(l)
		}
	case protowire.Fixed64Type:
		x, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var x32 uint32
		x32, n = protowire.ConsumeFixed32(b)
		x = uint64(x32)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return 0, 0, nil, 0, 0, parseError(num, n)
	}
	return num, typ, v, x, tag + n, nil
}

// Minimal reports whether a field that Next returned, n bytes long, is
// written in its shortest form: formats with one encoding per message
// (dag-pb, UnixFS) refuse other forms (with ErrNonCanonical). A group is
// minimal: the formats that care have none.
func Minimal(num protowire.Number, typ protowire.Type, v []byte, x uint64, n int) bool {
	size := protowire.SizeTag(num)
	switch typ {
	case protowire.VarintType:
		size += protowire.SizeVarint(x)
	case protowire.BytesType:
		size += protowire.SizeBytes(len(v))
	case protowire.Fixed32Type:
		size += 4
	case protowire.Fixed64Type:
		size += 8
	default:
		return true
	}
	return n == size
}

// Error codes of Next for parseError, beside protowire's (which are small
// negative numbers).
const (
	codeTruncated = -100
	codeBadTag    = -1000 // added to protowire's code for the tag
)

// parseError describes what next found wrong. It and wrap
// are kept out of line: inlined, fmt.Errorf's arguments would enlarge the
// frames of the decoders' hot loops.
//
//go:noinline
func parseError(num protowire.Number, code int) error {
	switch {
	case code == codeTruncated:
		return fmt.Errorf("field %d: %w", num, io.ErrUnexpectedEOF)
	case code <= codeBadTag:
		return fmt.Errorf("tag: %w", protowire.ParseError(code-codeBadTag))
	}
	return fmt.Errorf("field %d: %w", num, protowire.ParseError(code))
}

// EachField calls fn with each field of b in order (v for a
// length-delimited field, x for a varint or fixed one; see Next) and stops
// at the first error. An error of the wire format is returned wrapped in
// bad, the caller's error for a malformed message; fn's are returned as
// they are.
func EachField(b []byte, bad error, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, v, x, n, err := Next(b)
		if err != nil {
			return wrap(bad, err)
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

//go:noinline
func wrap(bad, err error) error {
	return fmt.Errorf("%w: %v", bad, err)
}
