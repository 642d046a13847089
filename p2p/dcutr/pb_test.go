package dcutr

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestMsgRoundTrip(t *testing.T) {
	for _, m := range []*Msg{
		{Type: Sync},
		{Type: Connect, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.7/tcp/4001"), ma.StringCast("/ip6/2001:db8::1/tcp/4001")}},
	} {
		got, err := Unmarshal(m.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != m.Type || len(got.Addrs) != len(m.Addrs) {
			t.Fatalf("round trip %+v: %+v", m, got)
		}
		for i := range m.Addrs {
			if !got.Addrs[i].Equal(m.Addrs[i]) {
				t.Fatalf("address %d: %s, want %s", i, got.Addrs[i], m.Addrs[i])
			}
		}
	}
}

func TestUnmarshalBad(t *testing.T) {
	connect := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 100)
	cases := map[string][]byte{
		"empty":             nil,
		"no type":           protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte{4, 1, 2, 3, 4}),
		"unknown type":      protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 200),
		"type as bytes":     protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{100}),
		"addrs as varint":   protowire.AppendVarint(protowire.AppendTag(connect, 2, protowire.VarintType), 1),
		"truncated address": append(protowire.AppendTag(connect, 2, protowire.BytesType), 9, 1),
		"bad tag":           {0xff},
		"oversized":         append(connect, make([]byte, MaxMsgSize)...),
	}
	for name, b := range cases {
		if _, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// TestUnmarshalBounded: hundreds of addresses decode to MaxAddrs; those
// that do not parse are dropped; unknown fields are skipped.
func TestUnmarshalBounded(t *testing.T) {
	m := &Msg{Type: Connect}
	for i := range 300 {
		m.Addrs = append(m.Addrs, ma.StringCast("/ip4/198.51.100.9/tcp/"+strconv.Itoa(1000+i)))
	}
	b := m.Marshal()
	b = protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), []byte("future"))
	got, err := Unmarshal(b)
	if err != nil || len(got.Addrs) != MaxAddrs {
		t.Fatalf("300 addresses: %v, %d kept, want %d", err, len(got.Addrs), MaxAddrs)
	}
	bad := protowire.AppendBytes(protowire.AppendTag((&Msg{Type: Connect}).Marshal(), 2, protowire.BytesType), []byte{0xee, 0x01})
	if got, err := Unmarshal(bad); err != nil || len(got.Addrs) != 0 {
		t.Fatalf("an unparsable address: %v, %d kept", err, len(got.Addrs))
	}
}

// TestWriteSeeds keeps the fuzz corpus in testdata/fuzz/FuzzUnmarshal
// (SHARE_WRITE_SEEDS=1 rewrites it).
func TestWriteSeeds(t *testing.T) {
	if os.Getenv("SHARE_WRITE_SEEDS") == "" {
		t.Skip("SHARE_WRITE_SEEDS=1 rewrites the seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzUnmarshal")
	os.MkdirAll(dir, 0o755)
	seeds := map[string][]byte{
		"sync":    (&Msg{Type: Sync}).Marshal(),
		"connect": (&Msg{Type: Connect, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.7/tcp/4001")}}).Marshal(),
		"garbage": {0x08, 0xff, 0xff, 0x12, 0x40},
	}
	for name, b := range seeds {
		var buf bytes.Buffer
		buf.WriteString("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
