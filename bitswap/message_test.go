package bitswap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/dag"
)

func testCid(t testing.TB, codec uint64, s string) cid.Cid {
	t.Helper()
	return dag.Sum(codec, []byte(s))
}

func v0Cid(t testing.TB, data []byte) cid.Cid {
	t.Helper()
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV0(h)
}

// body strips the length prefix AppendMessage writes, checking it.
func body(t testing.TB, b []byte) []byte {
	t.Helper()
	n, k := protowire.ConsumeVarint(b)
	if k < 0 || int(n) != len(b)-k {
		t.Fatalf("length prefix %d (%d bytes) for a body of %d", n, k, len(b)-k)
	}
	return b[k:]
}

func fullMessage(t testing.TB) *Message {
	a, c := testCid(t, dag.Raw, "a"), testCid(t, dag.DagPB, "c")
	return &Message{
		Full: true,
		Wants: []Entry{
			{Cid: a, Priority: 7, Type: WantHave, SendDontHave: true},
			{Cid: c, Priority: -3},
			{Cid: a, Cancel: true},
		},
		Blocks:       []Block{{Prefix: c.Prefix(), Data: []byte("c")}, {Prefix: a.Prefix(), Data: []byte{}}},
		Presences:    []Presence{{Cid: a}, {Cid: c, DontHave: true}},
		PendingBytes: 1 << 20,
	}
}

// A message survives encoding and decoding, field for field, in each
// protocol's encoding (1.0.0's without what it cannot carry).
func TestRoundTrip(t *testing.T) {
	data := []byte("dag-pb node")
	v0 := v0Cid(t, data)
	for _, proto := range Protocols {
		t.Run(proto, func(t *testing.T) {
			m := fullMessage(t)
			want := *m
			if isV0(proto) {
				m.Blocks = []Block{{Prefix: v0.Prefix(), Data: data}}
				want = *m
				want.Presences, want.PendingBytes = nil, 0
			}
			got, err := Unmarshal(body(t, AppendMessage(nil, m, proto)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("got %+v\nwant %+v", *got, want)
			}
		})
	}
}

// Every block decodes to the CID it was sent for.
func TestBlockCID(t *testing.T) {
	data := []byte("some bytes")
	sha, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: 32}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	sha512, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_512, MhLength: 64}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []cid.Cid{dag.Sum(dag.Raw, data), dag.Sum(dag.DagPB, data), sha, v0Cid(t, data), sha512} {
		got, err := Block{Prefix: c.Prefix(), Data: data}.CID()
		if err != nil || got != c {
			t.Errorf("CID of %s's block: %s, %v", c, got, err)
		}
	}
	if _, err := (Block{Prefix: cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x3ff, MhLength: 32}}).CID(); err == nil {
		t.Error("a block under an unknown hash has a CID")
	}
}

// An empty message is empty on the wire, and decodes to nothing.
func TestEmpty(t *testing.T) {
	b := AppendMessage(nil, &Message{}, Protocol120)
	if !bytes.Equal(b, []byte{0}) {
		t.Fatalf("empty message encodes to %x", b)
	}
	m, err := Unmarshal(nil)
	if err != nil || !reflect.DeepEqual(*m, Message{}) {
		t.Fatalf("got %+v, %v", m, err)
	}
}

func tag(f protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, f, typ) }

func bytesField(f protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(tag(f, protowire.BytesType), v)
}

func varintField(f protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(tag(f, protowire.VarintType), v)
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestMalformed(t *testing.T) {
	c := testCid(t, dag.Raw, "x").Bytes()
	entry := func(fields ...[]byte) []byte { return bytesField(fWantlist, bytesField(fEntries, cat(fields...))) }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"truncated tag", []byte{0x80}},
		{"truncated length", []byte{0x0a, 0x80}},
		{"length past the end", []byte{0x0a, 0x05, 0x00}},
		{"oversize length", cat(tag(fWantlist, protowire.BytesType), protowire.AppendVarint(nil, 1<<40))},
		{"varint of 11 bytes", cat(tag(fPendingBytes, protowire.VarintType), bytes.Repeat([]byte{0xff}, 10), []byte{1})},
		{"field 0", []byte{0x02, 0x00}},
		{"wantlist as varint", varintField(fWantlist, 1)},
		{"pendingBytes as bytes", bytesField(fPendingBytes, nil)},
		{"block as varint", varintField(fBlocksV0, 1)},
		{"entry as varint", bytesField(fWantlist, varintField(fEntries, 1))},
		{"full as bytes", bytesField(fWantlist, bytesField(fFull, nil))},
		{"entry without CID", entry(varintField(fEntryPriority, 1))},
		{"entry CID bad", entry(bytesField(fEntryBlock, []byte{1, 0x55, 0x1e, 32, 1}))},
		{"entry CID trailing", entry(bytesField(fEntryBlock, append(c, 0)))},
		{"entry CID too long", entry(bytesField(fEntryBlock, make([]byte, MaxCidSize+1)))},
		{"entry CID as varint", entry(varintField(fEntryBlock, 1))},
		{"entry want type 2", entry(bytesField(fEntryBlock, c), varintField(fEntryType, 2))},
		{"entry cancel as bytes", entry(bytesField(fEntryBlock, c), bytesField(fEntryCancel, nil))},
		{"payload without prefix", bytesField(fPayload, bytesField(fBlockData, []byte("x")))},
		{"prefix truncated", bytesField(fPayload, bytesField(fBlockPrefix, []byte{1, 0x55, 0x1e}))},
		{"prefix trailing", bytesField(fPayload, bytesField(fBlockPrefix, []byte{1, 0x55, 0x1e, 32, 0}))},
		{"prefix non-minimal varint", bytesField(fPayload, bytesField(fBlockPrefix, []byte{0x81, 0x00, 0x55, 0x1e, 32}))},
		{"prefix version 2", bytesField(fPayload, bytesField(fBlockPrefix, []byte{2, 0x55, 0x1e, 32}))},
		{"prefix v0 raw", bytesField(fPayload, bytesField(fBlockPrefix, []byte{0, 0x55, 0x12, 32}))},
		{"prefix digest 129", bytesField(fPayload, bytesField(fBlockPrefix, []byte{1, 0x55, 0x1e, 0x81, 1}))},
		{"prefix as varint", bytesField(fPayload, varintField(fBlockPrefix, 1))},
		{"presence without CID", bytesField(fPresences, varintField(fPresenceType, 1))},
		{"presence type 2", bytesField(fPresences, cat(bytesField(fPresenceCid, c), varintField(fPresenceType, 2)))},
		{"presence CID bad", bytesField(fPresences, bytesField(fPresenceCid, []byte{9}))},
		{"unknown field truncated", []byte{0x32, 0x05}},
		{"too large", make([]byte, MaxMessageSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Unmarshal(tc.b)
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("got %+v, %v; want ErrBadMessage", m, err)
			}
		})
	}
}

// Unknown fields are skipped, as protobuf's decoders do: a newer peer's
// messages still decode.
func TestUnknownFields(t *testing.T) {
	c := testCid(t, dag.Raw, "x")
	b := cat(varintField(9, 1), bytesField(fPresences, cat(bytesField(fPresenceCid, c.Bytes()), bytesField(7, []byte("?")))), bytesField(100, nil))
	m, err := Unmarshal(b)
	if err != nil || len(m.Presences) != 1 || m.Presences[0].Cid != c {
		t.Fatalf("got %+v, %v", m, err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(body(f, AppendMessage(nil, fullMessage(f), Protocol120)))
	f.Add(body(f, AppendMessage(nil, fullMessage(f), Protocol100)))
	files, _ := filepath.Glob("testdata/kubo/*.bin")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		// What decodes re-encodes to a message that decodes the same.
		again, err := Unmarshal(body(t, AppendMessage(nil, m, Protocol120)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normal(m), normal(again)) {
			t.Fatalf("%+v\nre-encoded as %+v", m, again)
		}
	})
}

// normal makes nil and empty slices alike, for comparisons.
func normal(m *Message) Message {
	n := *m
	if len(n.Wants) == 0 {
		n.Wants = nil
	}
	if len(n.Blocks) == 0 {
		n.Blocks = nil
	}
	for i := range n.Blocks {
		if len(n.Blocks[i].Data) == 0 {
			n.Blocks[i].Data = nil
		}
	}
	if len(n.Presences) == 0 {
		n.Presences = nil
	}
	return n
}
