// Package pbwire walks the fields of a protobuf message. It is the one
// field loop the decoders of our wire formats (dag-pb, bitswap, the DHT,
// pubsub, identify and the other libp2p protocols) share, so that the
// checks of malformed input are written, and fuzzed, once. It decodes the
// wire format only; what a field means stays with each decoder.
package pbwire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field is one field of a message.
type Field struct {
	Num  protowire.Number
	Type protowire.Type
	// Bytes is the payload of a length-delimited field. It aliases the
	// message.
	Bytes []byte
	// Value is the value of a varint, fixed32 or fixed64 field.
	Value uint64
}

// ErrNonCanonical is returned by NextCanonical for a field whose tag,
// varint or length is not written in its shortest form.
var ErrNonCanonical = errors.New("non-minimal encoding")

// Next decodes the field at the start of b and returns it with its
// encoded length. A group is skipped whole: its Bytes and Value are zero.
// Errors name the field; callers wrap them with their message's error.
func Next(b []byte) (Field, int, error) {
	f, _, n, err := next(b)
	return f, n, err
}

// NextCanonical is Next for formats with one encoding per message (dag-pb,
// UnixFS): it also refuses, with ErrNonCanonical, a tag, varint or length
// that is not minimal. Groups and fixed fields pass; the caller refuses
// the fields its format does not have.
func NextCanonical(b []byte) (Field, int, error) {
	f, tag, n, err := next(b)
	if err != nil {
		return Field{}, 0, err
	}
	if tag != protowire.SizeTag(f.Num) {
		return Field{}, 0, fmt.Errorf("field %d: tag: %w", f.Num, ErrNonCanonical)
	}
	switch f.Type {
	case protowire.VarintType:
		if n-tag != protowire.SizeVarint(f.Value) {
			return Field{}, 0, fmt.Errorf("field %d: varint: %w", f.Num, ErrNonCanonical)
		}
	case protowire.BytesType:
		if n-tag != protowire.SizeBytes(len(f.Bytes)) {
			return Field{}, 0, fmt.Errorf("field %d: length: %w", f.Num, ErrNonCanonical)
		}
	}
	return f, n, nil
}

// next decodes a field and returns it, the length of its tag and its
// whole length.
func next(b []byte) (f Field, tag, n int, err error) {
	num, typ, tag := protowire.ConsumeTag(b)
	if tag < 0 {
		return Field{}, 0, 0, fmt.Errorf("tag: %w", protowire.ParseError(tag))
	}
	f = Field{Num: num, Type: typ}
	v := b[tag:]
	switch typ {
	case protowire.VarintType:
		f.Value, n = protowire.ConsumeVarint(v)
	case protowire.BytesType:
		f.Bytes, n = protowire.ConsumeBytes(v)
	case protowire.Fixed64Type:
		f.Value, n = protowire.ConsumeFixed64(v)
	case protowire.Fixed32Type:
		var x uint32
		x, n = protowire.ConsumeFixed32(v)
		f.Value = uint64(x)
	default:
		n = protowire.ConsumeFieldValue(num, typ, v)
	}
	if n < 0 {
		return Field{}, 0, 0, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
	}
	return f, tag, tag + n, nil
}

// EachField calls fn with each field of b in order (v for a
// length-delimited field, x for a varint or fixed one; see Next) and stops
// at the first error. An error of the wire format is returned wrapped in
// bad, the caller's error for a malformed message; fn's are returned as
// they are.
func EachField(b []byte, bad error, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		f, n, err := Next(b)
		if err != nil {
			return fmt.Errorf("%w: %v", bad, err)
		}
		b = b[n:]
		if err := fn(f.Num, f.Type, f.Bytes, f.Value); err != nil {
			return err
		}
	}
	return nil
}
