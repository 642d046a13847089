package autonat

import (
	"bytes"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func seedMessages() [][]byte {
	a := ma.StringCast("/ip4/198.51.100.1/tcp/4001")
	return [][]byte{
		(&Message{Type: DialRequest, Addrs: []ma.Multiaddr{a, a}, Nonce: 42}).Append(nil),
		(&Message{Type: DialResponse, Status: StatusOK, AddrIdx: 1, DialStatus: DialOK}).Append(nil),
		(&Message{Type: DialDataRequest, AddrIdx: 1, NumBytes: 30000}).Append(nil),
		(&Message{Type: DialDataResponse, Data: []byte("xyz")}).Append(nil),
	}
}

// FuzzUnmarshalMessage: any input decodes or fails cleanly, within the
// limits, and what decodes encodes to something that decodes the same.
func FuzzUnmarshalMessage(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		if len(m.Addrs) > MaxAddrs {
			t.Fatalf("%d addresses", len(m.Addrs))
		}
		for i, a := range m.Addrs {
			if a == nil {
				m.Addrs[i] = ma.StringCast("/ip4/0.0.0.0/tcp/0") // keep the index
			}
		}
		again, err := UnmarshalMessage(m.Append(nil))
		if err != nil || again.Type != m.Type || again.Nonce != m.Nonce || again.Status != m.Status ||
			again.DialStatus != m.DialStatus || again.AddrIdx != m.AddrIdx || again.NumBytes != m.NumBytes ||
			!bytes.Equal(again.Data, m.Data) || len(again.Addrs) != len(m.Addrs) {
			t.Fatalf("round trip: %+v -> %+v, %v", m, again, err)
		}
	})
}

func TestMessageRoundTrip(t *testing.T) {
	for _, s := range seedMessages() {
		m, err := UnmarshalMessage(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Append(nil), s) {
			t.Fatalf("%+v re-encodes differently", m)
		}
	}
	// The spec's numbers, checked on the wire: DialResponse{status OK,
	// addrIdx 1, dialStatus OK} is field 2 of Message.
	want := []byte{0x12, 0x08, 0x08, 0xc8, 0x01, 0x10, 0x01, 0x18, 0xc8, 0x01}
	if got := seedMessages()[1]; !bytes.Equal(got, want) {
		t.Fatalf("DialResponse = %x, want %x", got, want)
	}
}

func TestTooManyAddrs(t *testing.T) {
	addrs := make([]ma.Multiaddr, MaxAddrs+1)
	for i := range addrs {
		addrs[i] = ma.StringCast("/ip4/198.51.100.1/tcp/1")
	}
	if _, err := UnmarshalMessage((&Message{Type: DialRequest, Addrs: addrs}).Append(nil)); err == nil {
		t.Fatal("accepted", len(addrs), "addresses")
	}
}

func FuzzUnmarshalDialBack(f *testing.F) {
	f.Add(AppendDialBack(nil, 7))
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := UnmarshalDialBack(b)
		if err != nil {
			return
		}
		if got, err := UnmarshalDialBack(AppendDialBack(nil, n)); err != nil || got != n {
			t.Fatalf("round trip %d -> %d, %v", n, got, err)
		}
	})
}

func FuzzUnmarshalDialBackResponse(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		UnmarshalDialBackResponse(b)
	})
}
