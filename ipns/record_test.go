package ipns

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// kuboNow is when the kubo records of testdata are checked: the live ones
// are valid then, the expired one is not.
var kuboNow = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

type kuboRecord struct {
	file, name string
	seq        uint64
	ttl        time.Duration
	value      string
	expired    bool
	raw        []byte
}

func kuboRecords(t testing.TB) []kuboRecord {
	t.Helper()
	f, err := os.Open("testdata/kubo-records.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []kuboRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		seq, err1 := strconv.ParseUint(fs[2], 10, 64)
		ttl, err2 := time.ParseDuration(fs[3])
		raw, err3 := os.ReadFile(filepath.Join("testdata", fs[0]))
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out = append(out, kuboRecord{fs[0], fs[1], seq, ttl, fs[4], fs[5] == "expired", raw})
	}
	if len(out) == 0 {
		t.Fatal("no kubo records")
	}
	return out
}

// TestKuboRecords decodes and validates kubo's records, and checks that
// they marshal back to kubo's bytes and that share's encoder makes the
// same signed data of the same fields.
func TestKuboRecords(t *testing.T) {
	for _, k := range kuboRecords(t) {
		t.Run(k.file, func(t *testing.T) {
			id, err := ParseName(k.name)
			if err != nil {
				t.Fatal(err)
			}
			if got := Name(id); got != k.name {
				t.Errorf("Name = %s, want %s", got, k.name)
			}
			r, err := Validator{Now: func() time.Time { return kuboNow }}.Decode(RoutingKey(id), k.raw)
			if k.expired {
				if !errors.Is(err, ErrExpired) {
					t.Fatalf("Decode of an expired record: %v, want ErrExpired", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Value) != k.value || r.Sequence != k.seq || r.TTL != k.ttl {
				t.Errorf("record = %q seq %d TTL %v, want %q seq %d TTL %v", r.Value, r.Sequence, r.TTL, k.value, k.seq, k.ttl)
			}
			if !bytes.Equal(r.Marshal(), k.raw) {
				t.Errorf("Marshal does not give kubo's bytes back:\n%x\n%x", r.Marshal(), k.raw)
			}
			d := appendCBOR(nil, &data{Value: r.Value, Validity: []byte(r.Validity.Format(validityFormat)), Sequence: r.Sequence, TTL: uint64(r.TTL)})
			if !bytes.Equal(d, r.Data) {
				t.Errorf("share's CBOR of the same fields differs:\n%x\n%x", d, r.Data)
			}
		})
	}
}

func newKey(t testing.TB) (peer.ID, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id, priv
}

func TestRoundTrip(t *testing.T) {
	id, priv := newKey(t)
	eol := time.Now().Add(time.Hour)
	r, err := New(priv, []byte("/ipfs/bafkqaaa"), 3, eol, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Validator{}.Decode(RoutingKey(id), r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Value) != "/ipfs/bafkqaaa" || got.Sequence != 3 || got.TTL != time.Minute || !got.Validity.Equal(eol) {
		t.Errorf("round trip: %+v", got)
	}
}

// TestValidate is the table of records every node refuses.
func TestValidate(t *testing.T) {
	id, priv := newKey(t)
	other, otherPriv := newKey(t)
	now := time.Now()
	good := func() *Record {
		r, err := New(priv, []byte("/ipfs/bafkqaaa"), 5, now.Add(time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name   string
		id     peer.ID
		record func() []byte
		want   error
	}{
		{"good", id, func() []byte { return good().Marshal() }, nil},
		{"forged V2 signature", id, func() []byte {
			r := good()
			r.SignatureV2[0] ^= 1
			return r.Marshal()
		}, ErrSignature},
		{"no V2 signature", id, func() []byte {
			r := good()
			r.SignatureV2 = nil
			return r.Marshal()
		}, ErrSignature},
		{"data changed after signing", id, func() []byte {
			r := good()
			r.Data = appendCBOR(nil, &data{Value: []byte("/ipfs/bafkqaaa"), Validity: []byte(now.Add(time.Hour).Format(validityFormat)), Sequence: 6})
			r.v1.present = false
			return r.Marshal()
		}, ErrSignature},
		{"V1 value differs from the signed data", id, func() []byte {
			r := good()
			r.v1.value = []byte("/ipfs/bafkqaab")
			return r.Marshal()
		}, ErrInvalid},
		{"expired", id, func() []byte {
			r, err := New(priv, []byte("/ipfs/bafkqaaa"), 5, now.Add(-time.Second), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return r.Marshal()
		}, ErrExpired},
		{"signed by another key", id, func() []byte {
			r, err := New(otherPriv, []byte("/ipfs/bafkqaaa"), 5, now.Add(time.Hour), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return r.Marshal()
		}, ErrSignature},
		{"embedded key of another name", id, func() []byte {
			r := good()
			pub, _ := other.PublicKey()
			r.PubKey = peer.MarshalPublicKey(pub)
			return r.Marshal()
		}, ErrWrongKey},
		{"oversize", id, func() []byte {
			r := good()
			r.PubKey = make([]byte, MaxRecordSize)
			return r.Marshal()
		}, ErrTooBig},
		{"V1 only", id, func() []byte {
			r := good()
			r.Data, r.SignatureV2 = nil, nil
			return r.Marshal()
		}, ErrInvalid},
		{"garbage", id, func() []byte { return []byte{0xff, 0xff, 0xff} }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validator{Now: func() time.Time { return now }}.Validate(RoutingKey(tt.id), tt.record())
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("Validate: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewRefusesOversize(t *testing.T) {
	_, priv := newKey(t)
	if _, err := New(priv, make([]byte, MaxRecordSize), 0, time.Now().Add(time.Hour), 0); !errors.Is(err, ErrTooBig) {
		t.Errorf("New of a %d-byte value: %v, want ErrTooBig", MaxRecordSize, err)
	}
}

// TestCompare: a replayed older sequence loses; of equal sequences the
// longer validity wins; the byte tie-break is a total order.
func TestCompare(t *testing.T) {
	_, priv := newKey(t)
	now := time.Now()
	mk := func(seq uint64, eol time.Duration) []byte {
		r, err := New(priv, []byte("/ipfs/bafkqaaa"), seq, now.Add(eol), 0)
		if err != nil {
			t.Fatal(err)
		}
		return r.Marshal()
	}
	v := Validator{}
	older, newer := mk(1, 48*time.Hour), mk(2, time.Hour)
	if v.Compare(newer, older) <= 0 || v.Compare(older, newer) >= 0 {
		t.Error("a higher sequence does not win over a longer validity")
	}
	short, long := mk(2, time.Hour), mk(2, 2*time.Hour)
	if v.Compare(long, short) <= 0 {
		t.Error("of equal sequences, the longer validity does not win")
	}
	if v.Compare(newer, []byte("junk")) <= 0 {
		t.Error("a record loses to junk")
	}
	if v.Compare(newer, newer) != 0 {
		t.Error("a record is not equal to itself")
	}
}

func TestParseName(t *testing.T) {
	id, _ := newKey(t)
	for _, s := range []string{Name(id), id.String(), id.ToCid().String(), "/ipns/" + Name(id)} {
		got, err := ParseName(s)
		if err != nil || got != id {
			t.Errorf("ParseName(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "example.com", "bafkqaaa", "k51notaname", "12D3KooWnope"} {
		if _, err := ParseName(s); !errors.Is(err, ErrBadName) {
			t.Errorf("ParseName(%q): %v, want ErrBadName", s, err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, k := range kuboRecords(f) {
		f.Add(k.raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Unmarshal(b)
		if err != nil {
			return
		}
		// A record that decodes marshals to bytes that decode to the
		// same fields.
		r2, err := Unmarshal(r.Marshal())
		if err != nil {
			t.Fatalf("re-marshalled record does not decode: %v", err)
		}
		if !bytes.Equal(r.Data, r2.Data) || r.Sequence != r2.Sequence || !bytes.Equal(r.Value, r2.Value) {
			t.Fatal("re-marshalled record differs")
		}
		Validate(peer.ID("x"), r, time.Now())
	})
}

func FuzzCBOR(f *testing.F) {
	for _, k := range kuboRecords(f) {
		r, err := Unmarshal(k.raw)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Data)
	}
	f.Add([]byte{0xa1, 0x61, 0x78, 0x9f}) // indefinite array: refused
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeCBOR(b)
		if err != nil || !d.complete() {
			return
		}
		// A complete map re-encodes canonically to a map that decodes to
		// the same fields.
		d2, err := decodeCBOR(appendCBOR(nil, d))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Value, d2.Value) || !bytes.Equal(d.Validity, d2.Validity) || d.Sequence != d2.Sequence || d.TTL != d2.TTL || d.ValidityType != d2.ValidityType {
			t.Fatal("re-encoded data differs")
		}
	})
}
