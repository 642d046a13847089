package p2p

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/p2p/peer"
)

func TestIdentifyRoundTrip(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	m := &IdentifyMsg{
		ProtocolVersion: "share/1.0.0",
		AgentVersion:    "share/0.1",
		PublicKey:       peer.MarshalPublicKey(priv.Public().(ed25519.PublicKey)),
		ListenAddrs:     []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/4001"), ma.StringCast("/ip6/::1/tcp/4001")},
		ObservedAddr:    ma.StringCast("/ip4/5.6.7.8/tcp/999"),
		Protocols:       []string{"/share/id/1.0.0", "/share/ping/1.0.0"},
	}
	b := m.Marshal()
	// A libp2p peer adds a signed peer record (field 8): skipped.
	b = protowire.AppendTag(b, 8, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("record"))
	got, err := UnmarshalIdentify(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), m.Marshal()) {
		t.Fatalf("round trip differs:\n%+v\n%+v", got, m)
	}
}

func TestIdentifyBad(t *testing.T) {
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"wrong wire type", append(tag(6, protowire.VarintType), 1)},
		{"truncated", append(tag(6, protowire.BytesType), 10, 'a')},
		{"long string", protowire.AppendBytes(tag(6, protowire.BytesType), bytes.Repeat([]byte("a"), 2000))},
		{"too big", make([]byte, MaxIdentifySize+1)},
		{"bad tag", []byte{0x80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := UnmarshalIdentify(tc.in); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	var many []byte
	for i := 0; i <= maxIdentifyAddrs; i++ {
		many = protowire.AppendTag(many, 2, protowire.BytesType)
		many = protowire.AppendBytes(many, ma.StringCast("/ip4/1.2.3.4/tcp/1").Bytes())
	}
	if _, err := UnmarshalIdentify(many); err == nil {
		t.Fatal("accepted too many addresses")
	}
}

func FuzzUnmarshalIdentify(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	f.Add((&IdentifyMsg{
		AgentVersion: "share/0.1",
		PublicKey:    peer.MarshalPublicKey(priv.Public().(ed25519.PublicKey)),
		ListenAddrs:  []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/4001")},
		Protocols:    []string{"/share/id/1.0.0"},
	}).Marshal())
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x42, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalIdentify(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		m2, err := UnmarshalIdentify(m.Marshal())
		if err != nil || !bytes.Equal(m2.Marshal(), m.Marshal()) {
			t.Fatalf("re-encoding is unstable: %v", err)
		}
	})
}

func FuzzPeerstoreRecord(f *testing.F) {
	rec := []byte{storeVersion}
	a := ma.StringCast("/ip4/1.2.3.4/tcp/1").Bytes()
	rec = protowire.AppendVarint(rec, uint64(len(a)))
	rec = append(rec, a...)
	rec = protowire.AppendVarint(rec, 1700000000)
	f.Add(rec)
	f.Add([]byte{storeVersion, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		addrs, exps, err := DecodeAddrRecord(b)
		if err == nil && len(addrs) != len(exps) {
			t.Fatal("lengths differ")
		}
	})
}
