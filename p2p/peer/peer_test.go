package peer

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// testID returns the PeerID of the ed25519 key with the all-zero seed.
func testID(t testing.TB) (ID, ed25519.PrivateKey) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	id, err := IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id, priv
}

func TestIDForms(t *testing.T) {
	id, priv := testID(t)
	s := id.String()
	if !strings.HasPrefix(s, "12D3KooW") {
		t.Fatalf("base58 form %q", s)
	}
	c := id.ToCid()
	cs := c.String()
	if !strings.HasPrefix(cs, "bafz") {
		t.Fatalf("CID form %q", cs)
	}
	for _, in := range []string{s, cs} {
		got, err := Parse(in)
		if err != nil || got != id {
			t.Fatalf("Parse(%q) = %v, %v", in, got, err)
		}
	}
	back, err := FromCid(c)
	if err != nil || back != id {
		t.Fatalf("FromCid = %v, %v", back, err)
	}
	pub, err := id.PublicKey()
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("PublicKey = %x, %v", pub, err)
	}
	j, _ := json.Marshal(map[string]ID{"ID": id})
	var m map[string]ID
	if err := json.Unmarshal(j, &m); err != nil || m["ID"] != id {
		t.Fatalf("JSON round trip: %s %v", j, err)
	}
	pk, err := UnmarshalPrivateKey(MarshalPrivateKey(priv))
	if err != nil || !pk.Equal(priv) {
		t.Fatalf("private key round trip: %v", err)
	}
}

func TestParseBad(t *testing.T) {
	for _, s := range []string{
		"", "12D3KooW", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", // sha256 (RSA) IDs are not ed25519
		"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", // dag-pb CID
		"not an id",
	} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
}

func TestAddrInfo(t *testing.T) {
	id, _ := testID(t)
	m := ma.StringCast("/ip4/127.0.0.1/tcp/4001/p2p/" + id.String())
	ai, err := AddrInfoFromP2pAddr(m)
	if err != nil || ai.ID != id || len(ai.Addrs) != 1 || ai.Addrs[0].String() != "/ip4/127.0.0.1/tcp/4001" {
		t.Fatalf("AddrInfo = %v, %v", ai, err)
	}
	if got := ai.P2pAddrs(); len(got) != 1 || !got[0].Equal(m) {
		t.Fatalf("P2pAddrs = %v", got)
	}
	if _, err := AddrInfoFromString("/ip4/127.0.0.1/tcp/4001"); err == nil {
		t.Fatal("accepted a target without /p2p")
	}
	v6 := ma.StringCast("/ip6/::1/tcp/5/p2p/" + id.String())
	ais, err := AddrInfosFromP2pAddrs(m, v6)
	if err != nil || len(ais) != 1 || len(ais[0].Addrs) != 2 {
		t.Fatalf("grouped = %v, %v", ais, err)
	}
}

func FuzzParse(f *testing.F) {
	id, _ := testID(f)
	f.Add(id.String())
	f.Add(id.ToCid().String())
	f.Add("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
	f.Add("bafzaa")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		if id.Validate() != nil {
			t.Fatalf("Parse(%q) returned an invalid ID", s)
		}
		if back, err := Parse(id.String()); err != nil || back != id {
			t.Fatalf("round trip of %q failed", s)
		}
	})
}

func FuzzIDBytes(f *testing.F) {
	id, _ := testID(f)
	f.Add([]byte(id))
	f.Add([]byte{0, 36, 8, 1, 18, 32})
	f.Fuzz(func(t *testing.T, b []byte) {
		id := ID(b)
		pub, err := id.PublicKey()
		if err != nil {
			return
		}
		back, err := IDFromPublicKey(pub)
		if err != nil || back != id {
			t.Fatalf("ID %x round trips to %x", b, []byte(back))
		}
	})
}

func FuzzAddrInfo(f *testing.F) {
	id, _ := testID(f)
	f.Add("/ip4/1.2.3.4/tcp/1/p2p/" + id.String())
	f.Add("/ip6/::1/tcp/4001/p2p/" + id.ToCid().String())
	f.Add("/p2p/" + id.String())
	f.Add("/ip4/1.2.3.4/tcp/99999")
	f.Fuzz(func(t *testing.T, s string) {
		ai, err := AddrInfoFromString(s)
		if err != nil {
			return
		}
		if ai.ID.Validate() != nil {
			t.Fatalf("%q: invalid ID accepted", s)
		}
		for _, a := range ai.P2pAddrs() {
			back, err := AddrInfoFromP2pAddr(a)
			if err != nil || back.ID != ai.ID {
				t.Fatalf("%q: round trip %v: %v", s, a, err)
			}
		}
	})
}

func FuzzMultiaddrBytes(f *testing.F) {
	f.Add(ma.StringCast("/ip4/1.2.3.4/tcp/1").Bytes())
	f.Add(ma.StringCast("/ip6/::1/tcp/4001").Bytes())
	f.Add([]byte{0x04, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return
		}
		SplitAddr(m)
		if _, err := ma.NewMultiaddr(m.String()); err != nil && len(m) > 0 {
			t.Logf("%x prints as %q which does not parse: %v", b, m.String(), err)
		}
	})
}
