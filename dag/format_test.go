package dag

import (
	"bytes"
	"strings"
	"testing"

	mh "github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/errs"
)

// TestFormatOptions checks kubo's rules for unset and contradicting add
// flags.
func TestFormatOptions(t *testing.T) {
	zero, one, two, no, yes := 0, 1, 2, false, true
	tests := []struct {
		o    FormatOptions
		want Format
		err  string
	}{
		{FormatOptions{}, Format{}, ""},
		{FormatOptions{CIDVersion: &zero}, KuboDefault, ""},
		{FormatOptions{CIDVersion: &zero, Hash: "sha2-256"}, KuboDefault, ""},
		{FormatOptions{CIDVersion: &zero, RawLeaves: &yes}, Format{CIDv0: true, Hash: mh.SHA2_256}, ""},
		{FormatOptions{CIDVersion: &one}, Format{}, ""},
		{FormatOptions{Hash: "sha2-256"}, Format{Hash: mh.SHA2_256}, ""},
		{FormatOptions{Hash: "blake3", RawLeaves: &no}, Format{Hash: mh.BLAKE3, DagPBLeaves: true}, ""},
		{FormatOptions{CIDVersion: &one, Hash: "sha2-256", RawLeaves: &no}, Format{Hash: mh.SHA2_256, DagPBLeaves: true}, ""},
		{FormatOptions{CIDVersion: &zero, Hash: "blake3"}, Format{}, "--cid-version 0 and --hash blake3"},
		{FormatOptions{CIDVersion: &two}, Format{}, "--cid-version 2"},
		{FormatOptions{Hash: "sha3-256"}, Format{}, `--hash "sha3-256"`},
	}
	for _, tt := range tests {
		got, err := tt.o.Format()
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || errs.KindOf(err) != errs.Invalid {
				t.Errorf("%+v: error %v, want one saying %q", tt.o, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%+v: %v, %v; want %v", tt.o, got, err, tt.want)
		}
		if err := got.check(); err != nil {
			t.Errorf("%v: check: %v", got, err)
		}
	}
	if err := (Format{CIDv0: true}).check(); err == nil {
		t.Error("CIDv0 with BLAKE3 passes check")
	}
}

// TestWrapLeaf compares dag-pb leaves with the blocks kubo wrote for them.
func TestWrapLeaf(t *testing.T) {
	for _, tt := range []struct {
		chunk []byte
		want  []byte
	}{
		{nil, []byte{0x0a, 0x04, 0x08, 0x02, 0x18, 0x00}},
		{[]byte("c"), []byte{0x0a, 0x07, 0x08, 0x02, 0x12, 0x01, 'c', 0x18, 0x01}},
	} {
		buf := make([]byte, leafHead+len(tt.chunk)+leafTail)
		copy(buf[leafHead:], tt.chunk)
		if got := wrapLeaf(buf, len(tt.chunk)); !bytes.Equal(got, tt.want) {
			t.Errorf("wrapLeaf(%q) = %x, want %x", tt.chunk, got, tt.want)
		}
	}
	// A large chunk: the node decodes back to the chunk.
	chunk := randBytes(9, 4<<20)
	buf := make([]byte, leafHead+len(chunk)+leafTail)
	copy(buf[leafHead:], chunk)
	n, err := loadFileNode(Sum(DagPB, nil), wrapLeaf(buf, len(chunk)), int64(len(chunk)))
	if err != nil || !bytes.Equal(n.data, chunk) || len(n.links) != 0 {
		t.Fatalf("4 MiB leaf: %v", err)
	}
}

// TestFormatMetadata: metadata turns raw leaves off, and asking for raw
// leaves with it is an error, as kubo says.
func TestFormatMetadata(t *testing.T) {
	yes := true
	for _, o := range []FormatOptions{{PreserveMode: true}, {PreserveMtime: true, CIDVersion: new(int)}} {
		f, err := o.Format()
		if err != nil || !f.DagPBLeaves || f.PreserveMode != o.PreserveMode || f.PreserveMtime != o.PreserveMtime {
			t.Errorf("%+v: %+v, %v", o, f, err)
		}
		o.RawLeaves = &yes
		if _, err := o.Format(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%+v with raw leaves: %v, want an Invalid error", o, err)
		}
	}
	if err := (Format{PreserveMode: true}).check(); err == nil {
		t.Error("check accepts metadata with raw leaves")
	}
}
