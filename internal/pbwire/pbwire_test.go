package pbwire

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

var errBad = errors.New("bad test message")

// field is one field as Next returns it.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   []byte
	x   uint64
}

func TestNext(t *testing.T) {
	msg := protowire.AppendTag(nil, 1, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 300)
	msg = protowire.AppendTag(msg, 2, protowire.BytesType)
	msg = protowire.AppendString(msg, "hi")
	msg = protowire.AppendTag(msg, 3, protowire.Fixed32Type)
	msg = protowire.AppendFixed32(msg, 7)
	msg = protowire.AppendTag(msg, 4, protowire.Fixed64Type)
	msg = protowire.AppendFixed64(msg, 1<<40)
	msg = protowire.AppendTag(msg, 5, protowire.StartGroupType)
	msg = protowire.AppendTag(msg, 1, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 1)
	msg = protowire.AppendTag(msg, 5, protowire.EndGroupType)
	want := []field{
		{1, protowire.VarintType, nil, 300},
		{2, protowire.BytesType, []byte("hi"), 0},
		{3, protowire.Fixed32Type, nil, 7},
		{4, protowire.Fixed64Type, nil, 1 << 40},
		{5, protowire.StartGroupType, nil, 0},
	}
	var got []field
	err := EachField(msg, errBad, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		got = append(got, field{num, typ, v, x})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d fields, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].num != want[i].num || got[i].typ != want[i].typ || got[i].x != want[i].x || !bytes.Equal(got[i].v, want[i].v) {
			t.Errorf("field %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		b         []byte
		canonical bool // only Minimal refuses it
	}{
		{"empty tag", []byte{0x80}, false},
		{"field 0", []byte{0x00, 0x01}, false},
		{"truncated varint", []byte{0x08, 0x80}, false},
		{"truncated bytes", []byte{0x12, 0x05, 'a'}, false},
		{"truncated fixed32", []byte{0x1d, 1, 2}, false},
		{"truncated fixed64", []byte{0x21, 1, 2, 3}, false},
		{"lone end group", []byte{0x0c}, false},
		{"open group", []byte{0x0b, 0x08, 0x01}, false},
		{"reserved wire type", []byte{0x0e}, false},
		{"long tag", []byte{0x88, 0x00, 0x01}, true},
		{"long varint", []byte{0x08, 0x81, 0x00}, true},
		{"long fixed32 tag", []byte{0x8d, 0x00, 1, 2, 3, 4}, true},
		{"long length", []byte{0x12, 0x81, 0x00, 'a'}, true},
	} {
		_, _, _, _, _, err := Next(tc.b)
		if (err == nil) != tc.canonical {
			t.Errorf("%s: Next error %v", tc.name, err)
		}
		if num, typ, v, x, n, err := Next(tc.b); err == nil && Minimal(num, typ, v, x, n) {
			t.Errorf("%s: Minimal accepted %x", tc.name, tc.b)
		}
		err = EachField(tc.b, errBad, func(protowire.Number, protowire.Type, []byte, uint64) error { return nil })
		if !tc.canonical && !errors.Is(err, errBad) {
			t.Errorf("%s: EachField error %v, want one wrapping errBad", tc.name, err)
		}
	}
}

func TestEachFieldCallbackError(t *testing.T) {
	stop := errors.New("stop")
	msg := []byte{0x08, 0x01, 0x08, 0x02}
	calls := 0
	err := EachField(msg, errBad, func(protowire.Number, protowire.Type, []byte, uint64) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("EachField = %v after %d calls, want fn's error after 1", err, calls)
	}
}

// FuzzNext checks that the fields Next finds tile the message, that their
// payloads lie inside it, and that a Minimal field re-encodes to the same
// bytes.
func FuzzNext(f *testing.F) {
	f.Add([]byte{0x08, 0x96, 0x01, 0x12, 0x02, 'h', 'i'})
	f.Add([]byte{0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0x2b, 0x08, 0x01, 0x2c})
	f.Add([]byte{0x88, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			num, typ, v, x, n, err := Next(b)
			if err != nil {
				return
			}
			if n <= 0 || n > len(b) {
				t.Fatalf("length %d of a field in %d bytes", n, len(b))
			}
			if typ == protowire.BytesType && !inside(v, b[:n]) {
				t.Fatalf("payload does not alias the field")
			}
			if Minimal(num, typ, v, x, n) {
				if enc := appendField(field{num, typ, v, x}); enc != nil && !bytes.Equal(enc, b[:n]) {
					t.Fatalf("canonical field %x re-encodes as %x", b[:n], enc)
				}
			}
			b = b[n:]
		}
	})
}

// inside reports whether p is a sub-slice of b.
func inside(p, b []byte) bool {
	if len(p) == 0 {
		return true
	}
	for i := 0; i+len(p) <= len(b); i++ {
		if &b[i] == &p[0] {
			return true
		}
	}
	return false
}

// appendField encodes f afresh, or returns nil for a group.
func appendField(f field) []byte {
	b := protowire.AppendTag(nil, f.num, f.typ)
	switch f.typ {
	case protowire.VarintType:
		return protowire.AppendVarint(b, f.x)
	case protowire.BytesType:
		return protowire.AppendBytes(b, f.v)
	case protowire.Fixed32Type:
		return protowire.AppendFixed32(b, uint32(f.x))
	case protowire.Fixed64Type:
		return protowire.AppendFixed64(b, f.x)
	}
	return nil
}
