package ipns

import (
	"errors"
	"fmt"
	"math"
)

// The record's data is a DAG-CBOR map of five fields. The encoder writes
// exactly those, in DAG-CBOR's canonical key order (shorter keys first,
// then bytewise), with minimal-length heads, so that the bytes the V2
// signature covers are the ones kubo would write for the same record. The
// decoder reads any CBOR map of text keys, keeps the five fields and skips
// the others (the format is extensible), within a nesting limit.

// The keys of the data map.
const (
	keyTTL          = "TTL"
	keyValue        = "Value"
	keySequence     = "Sequence"
	keyValidity     = "Validity"
	keyValidityType = "ValidityType"
)

// CBOR major types.
const (
	majUint   = 0
	majNeg    = 1
	majBytes  = 2
	majText   = 3
	majArray  = 4
	majMap    = 5
	majTag    = 6
	majSimple = 7
)

// maxCBORDepth bounds the nesting of the unknown values the decoder skips.
const maxCBORDepth = 16

// errCBOR is wrapped by every decoding error of the data.
var errCBOR = errors.New("bad CBOR data")

// data is the content of the signed CBOR map.
type data struct {
	Value, Validity []byte
	ValidityType    uint64
	Sequence, TTL   uint64
	// has records which fields were present (bit i: field i of fieldKeys).
	has uint8
}

var fieldKeys = [...]string{keyTTL, keyValue, keySequence, keyValidity, keyValidityType}

// complete reports whether all five fields were present.
func (d *data) complete() bool { return d.has == 1<<len(fieldKeys)-1 }

// appendCBOR appends the canonical DAG-CBOR encoding of d.
func appendCBOR(b []byte, d *data) []byte {
	b = appendHead(b, majMap, uint64(len(fieldKeys)))
	b = appendText(b, keyTTL)
	b = appendHead(b, majUint, d.TTL)
	b = appendText(b, keyValue)
	b = appendHead(b, majBytes, uint64(len(d.Value)))
	b = append(b, d.Value...)
	b = appendText(b, keySequence)
	b = appendHead(b, majUint, d.Sequence)
	b = appendText(b, keyValidity)
	b = appendHead(b, majBytes, uint64(len(d.Validity)))
	b = append(b, d.Validity...)
	b = appendText(b, keyValidityType)
	return appendHead(b, majUint, d.ValidityType)
}

func appendText(b []byte, s string) []byte {
	b = appendHead(b, majText, uint64(len(s)))
	return append(b, s...)
}

// appendHead appends a CBOR head of the shortest form for v.
func appendHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= math.MaxUint8:
		return append(b, m|24, byte(v))
	case v <= math.MaxUint16:
		return append(b, m|25, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, m|26, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, m|27, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// readHead reads a CBOR head: its major type, its argument, and the
// bytes after it. Indefinite lengths (info 31) are refused: DAG-CBOR has
// none.
func readHead(b []byte) (major byte, arg uint64, rest []byte, err error) {
	if len(b) == 0 {
		return 0, 0, nil, fmt.Errorf("%w: truncated", errCBOR)
	}
	major, info := b[0]>>5, b[0]&31
	b = b[1:]
	if info < 24 {
		return major, uint64(info), b, nil
	}
	if info > 27 {
		return 0, 0, nil, fmt.Errorf("%w: head info %d", errCBOR, info)
	}
	n := 1 << (info - 24)
	if len(b) < n {
		return 0, 0, nil, fmt.Errorf("%w: truncated head", errCBOR)
	}
	for _, c := range b[:n] {
		arg = arg<<8 | uint64(c)
	}
	return major, arg, b[n:], nil
}

// readString reads the bytes of a byte or text string of the given major
// type; they alias b.
func readString(b []byte, major byte) (s, rest []byte, err error) {
	m, n, rest, err := readHead(b)
	if err != nil {
		return nil, nil, err
	}
	if m != major {
		return nil, nil, fmt.Errorf("%w: major type %d, want %d", errCBOR, m, major)
	}
	if n > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("%w: string of %d bytes runs past the end", errCBOR, n)
	}
	return rest[:n], rest[n:], nil
}

// readUint reads an unsigned integer.
func readUint(b []byte) (uint64, []byte, error) {
	m, v, rest, err := readHead(b)
	if err != nil {
		return 0, nil, err
	}
	if m != majUint {
		return 0, nil, fmt.Errorf("%w: major type %d, want an unsigned integer", errCBOR, m)
	}
	return v, rest, nil
}

// skip skips one data item of any type.
func skip(b []byte, depth int) ([]byte, error) {
	if depth > maxCBORDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", errCBOR, maxCBORDepth)
	}
	m, n, rest, err := readHead(b)
	if err != nil {
		return nil, err
	}
	switch m {
	case majBytes, majText:
		if n > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: string runs past the end", errCBOR)
		}
		return rest[n:], nil
	case majArray, majMap:
		if m == majMap {
			if n > math.MaxUint64/2 {
				return nil, fmt.Errorf("%w: map too long", errCBOR)
			}
			n *= 2
		}
		// Every item takes a byte at least: a count beyond the bytes
		// left is a lie, caught before it loops.
		if n > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: %d items in %d bytes", errCBOR, n, len(rest))
		}
		for range n {
			if rest, err = skip(rest, depth+1); err != nil {
				return nil, err
			}
		}
		return rest, nil
	case majTag:
		return skip(rest, depth+1)
	}
	return rest, nil // unsigned, negative, simple and float: the head is all
}

// decodeCBOR decodes the record's data map. The strings of the result
// alias b. A field of the wrong type, a repeated key or bytes after the
// map are errors; absent fields are left zero (the caller checks
// complete).
func decodeCBOR(b []byte) (*data, error) {
	m, n, rest, err := readHead(b)
	if err != nil {
		return nil, err
	}
	if m != majMap {
		return nil, fmt.Errorf("%w: not a map", errCBOR)
	}
	if n > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", errCBOR, n, len(rest))
	}
	d := &data{}
	seen := map[string]bool{}
	for range n {
		var k []byte
		if k, rest, err = readString(rest, majText); err != nil {
			return nil, err
		}
		if seen[string(k)] {
			return nil, fmt.Errorf("%w: key %q repeated", errCBOR, k)
		}
		seen[string(k)] = true
		if rest, err = d.field(string(k), rest); err != nil {
			return nil, fmt.Errorf("%w (key %q)", err, k)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the map", errCBOR, len(rest))
	}
	return d, nil
}

// field reads the value of key k into d, or skips it if k is not one of
// the record's.
func (d *data) field(k string, b []byte) (rest []byte, err error) {
	for i, fk := range fieldKeys {
		if fk == k {
			d.has |= 1 << i
		}
	}
	switch k {
	case keyValue:
		d.Value, rest, err = readString(b, majBytes)
	case keyValidity:
		d.Validity, rest, err = readString(b, majBytes)
	case keyValidityType:
		d.ValidityType, rest, err = readUint(b)
	case keySequence:
		d.Sequence, rest, err = readUint(b)
	case keyTTL:
		d.TTL, rest, err = readUint(b)
	default:
		rest, err = skip(b, 1)
	}
	return rest, err
}
