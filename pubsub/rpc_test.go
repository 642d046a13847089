package pubsub

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/share-p2p/share/p2p/peer"
)

func testKey(t testing.TB, seed byte) (ed25519.PrivateKey, peer.ID) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	id, err := peer.IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return priv, id
}

func testKeyN(t testing.TB, n int) (ed25519.PrivateKey, peer.ID) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1], seed[2] = byte(n), byte(n>>8), 0xa5
	priv := ed25519.NewKeyFromSeed(seed)
	id, err := peer.IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return priv, id
}

func signedMessage(t testing.TB, seed byte, topic string, data []byte) *Message {
	priv, id := testKey(t, seed)
	m := &Message{From: []byte(id), Data: data, Seqno: []byte{0, 0, 0, 0, 0, 0, 0, 7}, Topic: topic}
	sign(m, priv)
	return m
}

func fullRPC(t testing.TB) *RPC {
	return &RPC{
		Subs:    []SubOpt{{Subscribe: true, Topic: "a"}, {Subscribe: false, Topic: "b"}},
		Publish: []*Message{signedMessage(t, 1, "a", []byte("hello")), signedMessage(t, 2, "a", []byte{})},
		Control: Control{
			IHave: []IHave{{Topic: "a", IDs: []string{"x", "y"}}},
			IWant: []IWant{{IDs: []string{"z"}}},
			Graft: []string{"a"},
			Prune: []Prune{{Topic: "b", Peers: []PeerInfo{{ID: []byte("p1")}, {ID: []byte("p2"), Record: []byte("rec")}}, Backoff: 60}},
		},
	}
}

// normalRPC clears what decoding sets beyond the wire fields.
func normalRPC(r *RPC) *RPC {
	for _, m := range r.Publish {
		m.hasData = m.hasData || m.Data != nil
		if m.Data == nil && m.hasData {
			m.Data = []byte{}
		}
	}
	for _, p := range r.Control.Prune {
		for i := range p.Peers {
			if len(p.Peers[i].ID) == 0 {
				p.Peers[i].ID = nil // encoded always, decoded empty
			}
		}
	}
	return r
}

func TestRPCRoundTrip(t *testing.T) {
	r := fullRPC(t)
	b := AppendRPC(nil, r)
	if len(b) != r.Size() {
		t.Fatalf("encoded %d bytes, Size says %d", len(b), r.Size())
	}
	got, err := UnmarshalRPC(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalRPC(got), normalRPC(r)) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
}

func TestUnmarshalBad(t *testing.T) {
	for name, b := range map[string][]byte{
		"truncated tag":    {0x80},
		"truncated length": {0x12, 0x05, 1, 2},
		"bad nested":       {0x12, 0x02, 0x0a, 0x05},
		"bad control":      {0x1a, 0x03, 0x0a, 0x09, 0x00},
		"truncated varint": {0x0a, 0x02, 0x08, 0xff},
	} {
		if _, err := UnmarshalRPC(b); !errors.Is(err, ErrBadRPC) {
			t.Errorf("%s: err %v, want ErrBadRPC", name, err)
		}
	}
}

func TestSignVerify(t *testing.T) {
	m := signedMessage(t, 1, "topic", []byte("data"))
	if err := verify(m, nil); err != nil {
		t.Fatal(err)
	}
	// What the wire carries verifies the same after decoding.
	r, err := UnmarshalRPC(AppendRPC(nil, &RPC{Publish: []*Message{m}}))
	if err != nil || verify(r.Publish[0], nil) != nil {
		t.Fatalf("decoded message does not verify: %v", err)
	}
	_, other := testKey(t, 9)
	pub2, _ := testKey(t, 9)
	for name, mut := range map[string]func(*Message){
		"data":      func(m *Message) { m.Data = []byte("datb") },
		"topic":     func(m *Message) { m.Topic = "other" },
		"seqno":     func(m *Message) { m.Seqno = []byte{0, 0, 0, 0, 0, 0, 0, 8} },
		"from":      func(m *Message) { m.From = []byte(other) },
		"no seqno":  func(m *Message) { m.Seqno = nil },
		"no sig":    func(m *Message) { m.Signature = nil },
		"wrong key": func(m *Message) { m.Key = peer.MarshalPublicKey(pub2.Public().(ed25519.PublicKey)) },
		"data gone": func(m *Message) { m.Data, m.hasData = nil, false },
	} {
		c := *m
		mut(&c)
		if err := verify(&c, nil); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err %v, want ErrBadSignature", name, err)
		}
	}
	c := *m
	c.From = []byte{0x12, 0x20, 1, 2, 3} // a sha256 peer ID (RSA): no key here
	if err := verify(&c, nil); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("rsa author: err %v, want ErrUnsupportedKey", err)
	}
}

// TestKuboRPCs decodes the RPCs captured from kubo 0.43.1 and verifies the
// signatures of their messages.
func TestKuboRPCs(t *testing.T) {
	files, _ := filepath.Glob("testdata/kubo/*.bin")
	if len(files) == 0 {
		t.Skip("no captured RPCs")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		r, err := UnmarshalRPC(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, m := range r.Publish {
			if err := verify(m, nil); err != nil {
				t.Errorf("%s: kubo's message on %q: %v", name, m.Topic, err)
			}
		}
		if again := AppendRPC(nil, r); !bytes.Equal(again, b) {
			t.Logf("%s: re-encodes to %d bytes, not the same %d (fields unknown here dropped)", name, len(again), len(b))
		}
	}
}

func FuzzUnmarshalRPC(f *testing.F) {
	f.Add(AppendRPC(nil, fullRPC(f)))
	files, _ := filepath.Glob("testdata/kubo/*.bin")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRPC(b)
		if err != nil {
			if !errors.Is(err, ErrBadRPC) {
				t.Fatalf("error %v does not wrap ErrBadRPC", err)
			}
			return
		}
		enc := AppendRPC(nil, r)
		if len(enc) != r.Size() {
			t.Fatalf("Size %d, encoded %d", r.Size(), len(enc))
		}
		again, err := UnmarshalRPC(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalRPC(again), normalRPC(r)) {
			t.Fatalf("%+v\nre-encoded as %+v", r, again)
		}
		for _, m := range r.Publish {
			verify(m, nil) // must not panic
		}
	})
}
