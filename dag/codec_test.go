package dag

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"
)

func TestSumVerify(t *testing.T) {
	data := []byte("hello world\n")
	c := Sum(Raw, data)
	if got, want := c.String(), "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"; got != want {
		t.Fatalf("Sum = %s, want %s", got, want)
	}
	if err := Verify(c, data); err != nil {
		t.Fatal(err)
	}
	err := Verify(c, []byte("hello world!"))
	if !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Verify(corrupt) = %v, want ErrHashMismatch", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(c.String())) {
		t.Errorf("error %q does not name the CID", err)
	}
	// SHA2-256 CIDs (kubo's default) verify too.
	sha, err := cid.V1Builder{Codec: Raw, MhType: hashSHA256}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(sha, data); err != nil {
		t.Errorf("Verify(sha2-256) = %v", err)
	}
	if err := Verify(sha, data[1:]); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("Verify(sha2-256, corrupt) = %v", err)
	}
	// Other hashes are refused, not silently accepted.
	id, err := cid.V1Builder{Codec: Raw, MhType: 0x00}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(id, data); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Verify(identity) = %v, want ErrUnsupported", err)
	}
	if err := Verify(cid.Undef, data); err == nil {
		t.Error("Verify(Undef) succeeded")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodeKubo checks encodings byte for byte against what kubo writes.
func TestEncodeKubo(t *testing.T) {
	leaf := Sum(Raw, []byte("x"))
	h := hex.EncodeToString(leaf.Bytes())
	fs := UnixFS{Type: TypeFile, FileSize: 300, HasFileSize: true, BlockSizes: []uint64{200, 100}}
	n := PBNode{Links: []PBLink{{Hash: leaf, Tsize: 200}, {Hash: leaf, Tsize: 100}}, Data: fs.Marshal()}
	// UnixFS: type=2, filesize=300, blocksizes 200 and 100 unpacked.
	if got, want := hex.EncodeToString(fs.Marshal()), "0802"+"18ac02"+"20c801"+"2064"; got != want {
		t.Errorf("UnixFS = %s, want %s", got, want)
	}
	// PBNode: links (hash, empty name, tsize) before data.
	link := "0a24" + h + "1200" + "18"
	want := "122b" + link + "c801" + "122a" + link + "64" + "0a0a" + "080218ac0220c8012064"
	if got := hex.EncodeToString(n.Marshal()); got != want {
		t.Errorf("PBNode =\n%s, want\n%s", got, want)
	}
	if got := hex.EncodeToString((&UnixFS{Type: TypeDirectory}).Marshal()); got != "0801" {
		t.Errorf("directory UnixFS = %s, want 0801", got)
	}
	// The empty directory kubo writes: bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354 is its sha2-256 CIDv0 form.
	empty := (&PBNode{Data: (&UnixFS{Type: TypeDirectory}).Marshal()}).Marshal()
	if got := hex.EncodeToString(empty); got != "0a020801" {
		t.Errorf("empty directory = %s, want 0a020801", got)
	}
	sha, _ := cid.V1Builder{Codec: DagPB, MhType: hashSHA256}.Sum(empty)
	if sha.String() != "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354" {
		t.Errorf("empty directory sha2-256 CID = %s", sha)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	leaf := Sum(Raw, []byte("x"))
	nodes := []PBNode{
		{},
		{Data: []byte{}},
		{Data: []byte("abc")},
		{Links: []PBLink{{Hash: leaf}}},
		{Links: []PBLink{{Hash: leaf, NameAbsent: true, TsizeAbsent: true}, {Hash: leaf, Name: "ß/ok", Tsize: 1 << 40}}, Data: []byte{1}},
	}
	for i, n := range nodes {
		b := n.Marshal()
		got, err := DecodePBNode(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if !bytes.Equal(got.Marshal(), b) {
			t.Errorf("%d: re-encoding differs", i)
		}
		if (got.Data == nil) != (n.Data == nil) {
			t.Errorf("%d: Data presence lost", i)
		}
	}
	fss := []UnixFS{
		{Type: TypeRaw},
		{Type: TypeFile, Data: []byte("hi"), FileSize: 2, HasFileSize: true},
		{Type: TypeHAMTShard, Data: []byte{0xff}, HashType: 0x22, HasHashType: true, Fanout: 256, HasFanout: true},
		{Type: TypeSymlink, Data: []byte("../x"), Mode: 0o755, HasMode: true, Mtime: &UnixTime{Seconds: -5, Nanos: 7, HasNanos: true}},
		{Type: TypeFile, BlockSizes: []uint64{0, 1, 1 << 60}, Mtime: &UnixTime{Seconds: 1700000000}},
	}
	for i, fs := range fss {
		b := fs.Marshal()
		got, err := DecodeUnixFS(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if !reflect.DeepEqual(*got, fs) {
			t.Errorf("%d: got %+v, want %+v", i, *got, fs)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	leaf := Sum(Raw, []byte("x"))
	h := hex.EncodeToString(leaf.Bytes())
	pb := []struct{ name, hex string }{
		{"data before link", "0a00" + "1226" + "0a24" + h},
		{"duplicate data", "0a00" + "0a00"},
		{"unknown field", "1a00"},
		{"data as varint", "0801"},
		{"link without hash", "12021200"},
		{"link fields out of order", "1228" + "1200" + "0a24" + h},
		{"duplicate link name", "122a" + "0a24" + h + "1200" + "1200"},
		{"tsize as bytes", "1228" + "0a24" + h + "1a00"},
		{"bad link CID", "12040a020155"},
		{"link CID with trailing bytes", "1227" + "0a25" + h + "00"},
		{"truncated", "0a05abcd"},
		{"non-minimal length", "0a8000"},
		{"non-minimal tag", "8a0000"},
		{"group wire type", "0b"},
	}
	for _, tt := range pb {
		if _, err := DecodePBNode(mustHex(t, tt.hex)); !errors.Is(err, ErrInvalidNode) {
			t.Errorf("PBNode %s: err = %v, want ErrInvalidNode", tt.name, err)
		}
	}
	fs := []struct{ name, hex string }{
		{"empty (no type)", ""},
		{"no type", "1801"},
		{"unknown type", "0806"},
		{"out of order", "0802" + "1801" + "1200"},
		{"duplicate filesize", "0802" + "1801" + "1801"},
		{"packed blocksizes", "0802" + "22020102"},
		{"unknown field", "0802" + "4800"},
		{"type as bytes", "0a00"},
		{"mode overflow", "0802" + "388080808010"},
		{"mtime without seconds", "0802" + "4205" + "1501000000"},
		{"mtime nanos as varint", "0802" + "4204" + "08011001"},
		{"non-minimal varint", "088200"},
		{"duplicate type", "0802" + "0802"},
	}
	for _, tt := range fs {
		if _, err := DecodeUnixFS(mustHex(t, tt.hex)); !errors.Is(err, ErrInvalidNode) {
			t.Errorf("UnixFS %s: err = %v, want ErrInvalidNode", tt.name, err)
		}
	}
	// Repeated blocksizes are fine when contiguous and in order with the rest.
	if _, err := DecodeUnixFS(mustHex(t, "0802"+"1803"+"2001"+"2002"+"3000")); err != nil {
		t.Errorf("valid UnixFS rejected: %v", err)
	}
}

func FuzzDecodePBNode(f *testing.F) {
	leaf := Sum(Raw, []byte("x"))
	f.Add([]byte{})
	f.Add(mustHexF("0a020801"))
	f.Add((&PBNode{Links: []PBLink{{Hash: leaf, Name: "a", Tsize: 3}}, Data: []byte{8, 2}}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodePBNode(b)
		if err != nil {
			return
		}
		enc := n.Marshal()
		n2, err := DecodePBNode(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(normPB(n), normPB(n2)) {
			t.Fatalf("round trip differs: %+v vs %+v", n, n2)
		}
		// The decoder is strict, so what it accepts is canonical.
		if !bytes.Equal(enc, b) {
			t.Fatalf("accepted non-canonical encoding %x (canonical %x)", b, enc)
		}
	})
}

func FuzzDecodeUnixFS(f *testing.F) {
	f.Add([]byte{8, 1})
	f.Add((&UnixFS{Type: TypeFile, FileSize: 5, HasFileSize: true, BlockSizes: []uint64{2, 3}}).Marshal())
	f.Add((&UnixFS{Type: TypeSymlink, Data: []byte("t"), Mode: 0o644, HasMode: true, Mtime: &UnixTime{Seconds: 9, Nanos: 1, HasNanos: true}}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeUnixFS(b)
		if err != nil {
			return
		}
		enc := u.Marshal()
		u2, err := DecodeUnixFS(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(u, u2) {
			t.Fatalf("round trip differs: %+v vs %+v", u, u2)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("accepted non-canonical encoding %x (canonical %x)", b, enc)
		}
	})
}

// normPB makes decoded nodes comparable: cid.Cid compares by value already,
// but empty link slices may be nil or not.
func normPB(n *PBNode) PBNode {
	c := *n
	if len(c.Links) == 0 {
		c.Links = nil
	}
	return c
}

func mustHexF(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
