package dht

import (
	"bytes"
	"errors"
	"os"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/p2p/peer"
)

func testID(t testing.TB, seed byte) peer.ID {
	t.Helper()
	pub := bytes.Repeat([]byte{seed}, 32)
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func sampleMessage(t testing.TB) *Message {
	return &Message{
		Type: GetProviders,
		Key:  append([]byte{0x12, 0x20}, bytes.Repeat([]byte{7}, 32)...),
		CloserPeers: []Peer{
			{ID: testID(t, 1), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/4001")}, Connection: CanConnect},
			{ID: testID(t, 2), Addrs: []ma.Multiaddr{ma.StringCast("/ip6/2001:db8::1/tcp/4001")}},
		},
		ProviderPeers: []Peer{{ID: testID(t, 3), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/1")}}},
		Record:        &Record{Key: []byte("/ipns/x"), Value: []byte("v"), TimeReceived: "t"},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	m := sampleMessage(t)
	b := m.Marshal()
	got, err := UnmarshalMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), b) {
		t.Fatalf("round trip differs:\n%x\n%x", got.Marshal(), b)
	}
	if got.CloserPeers[0].Connection != CanConnect || got.ProviderPeers[0].ID != testID(t, 3) {
		t.Fatalf("decoded %+v", got)
	}
}

func TestUnmarshalLimits(t *testing.T) {
	addPeer := func(b []byte, field protowire.Number, rec []byte) []byte {
		b = protowire.AppendTag(b, field, protowire.BytesType)
		return protowire.AppendBytes(b, rec)
	}
	id := []byte(testID(t, 1))
	rec := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), id)
	big := append(bytes.Clone(rec), protowire.AppendBytes(protowire.AppendTag(nil, 7, protowire.BytesType), make([]byte, MaxPeerRecordSize))...)
	many := bytes.Clone(rec)
	for range 40 {
		many = protowire.AppendBytes(protowire.AppendTag(many, 2, protowire.BytesType), ma.StringCast("/ip4/1.2.3.4/tcp/1").Bytes())
	}
	var tooMany []byte
	for range MaxPeersPerList + 1 {
		tooMany = addPeer(tooMany, 8, rec)
	}
	badID := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("nope"))
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
		check   func(*Message) bool
	}{
		{"empty", nil, false, func(m *Message) bool { return m.Type == PutValue }},
		{"unknown fields skipped", protowire.AppendVarint(protowire.AppendTag(nil, 10, protowire.VarintType), 3), false, nil},
		{"truncated", sampleMessage(t).Marshal()[:40], true, nil},
		{"peer record too big", addPeer(nil, 8, big), true, nil},
		{"addresses capped", addPeer(nil, 8, many), false, func(m *Message) bool { return len(m.CloserPeers[0].Addrs) == MaxAddrsPerPeer }},
		{"too many peers", tooMany, true, nil},
		{"bad peer ID dropped", addPeer(nil, 9, badID), false, func(m *Message) bool { return len(m.ProviderPeers) == 0 }},
		{"key too long", protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), make([]byte, MaxKeySize+1)), true, nil},
		{"wire type mismatch", protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{1}), false, func(m *Message) bool { return m.Type == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := UnmarshalMessage(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			if err == nil && tt.check != nil && !tt.check(m) {
				t.Fatalf("unexpected result %+v", m)
			}
		})
	}
}

func TestSaneAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"/ip4/1.2.3.4/tcp/4001":      true,
		"/ip4/127.0.0.1/tcp/4001":    true,
		"/ip6/2001:db8::1/tcp/1":     true,
		"/ip4/0.0.0.0/tcp/4001":      false,
		"/ip6/::/tcp/4001":           false,
		"/ip4/224.0.0.1/tcp/4001":    false,
		"/ip6/ff02::1/tcp/4001":      false,
		"/ip4/1.2.3.4/tcp/0":         false,
		"/ip4/1.2.3.4/udp/4001":      false,
		"/dns4/example.com/tcp/4001": false,
		"/ip4/1.2.3.4/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N": false,
	} {
		if got := SaneAddr(ma.StringCast(s)); got != want {
			t.Errorf("SaneAddr(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestValidKey(t *testing.T) {
	good := append([]byte{0x12, 0x20}, make([]byte, 32)...)
	if !ValidKey(good) || ValidKey(good[:33]) || ValidKey(nil) || ValidKey(append(good, 0)) {
		t.Fatal("ValidKey misjudges")
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(sampleMessage(f).Marshal())
	f.Add((&Message{Type: FindNode, Key: []byte("x")}).Marshal())
	f.Add((&Message{Type: Ping}).Marshal())
	f.Add([]byte{0x42, 0x03, 0x0a, 0x01, 0x00})
	// A GET_VALUE answer carrying kubo's record, time received and all.
	rec, err := os.ReadFile("../ipns/testdata/kubo-self.pb")
	if err != nil {
		f.Fatal(err)
	}
	key := append([]byte("/ipns/"), testID(f, 4)...)
	f.Add((&Message{Type: GetValue, Key: key, Record: &Record{Key: key, Value: rec, TimeReceived: "2026-12-03T08:17:21.633123372Z"}}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		b2 := m.Marshal()
		m2, err := UnmarshalMessage(b2)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !bytes.Equal(m2.Marshal(), b2) {
			t.Fatal("re-encoding is not stable")
		}
		for _, p := range append(m.CloserPeers, m.ProviderPeers...) {
			if p.ID.Validate() != nil || len(p.Addrs) > MaxAddrsPerPeer {
				t.Fatalf("invalid peer decoded: %+v", p)
			}
		}
	})
}
