package relay

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestHopRoundTrip(t *testing.T) {
	id := newNode(t, nil).ID()
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/203.0.113.7/tcp/4001"), ma.StringCast("/ip6/2001:db8::1/tcp/4001")}
	msgs := []*HopMessage{
		{Type: HopReserve},
		{Type: HopConnect, Peer: &PeerInfo{ID: id}},
		{Type: HopStatus, Status: StatusOK, Reservation: &Reservation{Expire: 1700000000, Addrs: addrs, Voucher: []byte("v")}, Limit: &Limit{Duration: 120, Data: 131072}},
		{Type: HopStatus, Status: StatusNoReservation},
	}
	for _, m := range msgs {
		got, err := UnmarshalHop(m.Marshal())
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
	}
}

func TestStopRoundTrip(t *testing.T) {
	id := newNode(t, nil).ID()
	for _, m := range []*StopMessage{
		{Type: StopConnect, Peer: &PeerInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/1")}}, Limit: &Limit{Data: 1}},
		{Type: StopStatus, Status: StatusPermissionDenied},
	} {
		got, err := UnmarshalStop(m.Marshal())
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip of %+v: %+v, %v", m, got, err)
		}
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	typeOnly := protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 1)
	many := typeOnly
	peer := appendMsg(nil, 1, []byte(newNode(t, nil).ID()))
	for range maxAddrs + 1 {
		peer = appendMsg(peer, 2, ma.StringCast("/ip4/192.0.2.1/tcp/1").Bytes())
	}
	many = appendMsg(many, 2, peer)
	cases := map[string][]byte{
		"no type":                    {},
		"type as bytes":              appendMsg(nil, 1, []byte{1}),
		"unknown type":               protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 7),
		"peer without id":            appendMsg(typeOnly, 2, nil),
		"peer id not a key":          appendMsg(typeOnly, 2, appendMsg(nil, 1, []byte("nope"))),
		"too many addrs":             many,
		"status as bytes":            appendMsg(typeOnly, 5, []byte{100}),
		"truncated":                  typeOnly[:1],
		"oversized":                  append(typeOnly, appendMsg(nil, 99, make([]byte, MaxMessageSize))...),
		"reservation without expiry": appendMsg(protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 2), 3, nil),
	}
	for name, b := range cases {
		if _, err := UnmarshalHop(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestUnknownFieldsSkipped(t *testing.T) {
	b := (&HopMessage{Type: HopStatus, Status: StatusOK}).Marshal()
	b = appendMsg(b, 42, []byte("future"))
	b = protowire.AppendTag(b, 43, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 7)
	m, err := UnmarshalHop(b)
	if err != nil || m.Status != StatusOK {
		t.Fatalf("%+v, %v", m, err)
	}
}

func TestVoucher(t *testing.T) {
	r, p := newNode(t, nil), newNode(t, nil)
	exp := time.Unix(1700003600, 0)
	env := SignVoucher(r.key, &Voucher{Relay: r.ID(), Peer: p.ID(), Expiration: exp})
	v, err := OpenVoucher(env)
	if err != nil || v.Relay != r.ID() || v.Peer != p.ID() || !v.Expiration.Equal(exp) {
		t.Fatalf("open: %+v, %v", v, err)
	}
	bad := bytes.Clone(env)
	bad[len(bad)-1] ^= 1 // the signature is last
	if _, err := OpenVoucher(bad); !errors.Is(err, ErrBadVoucher) {
		t.Fatalf("tampered voucher: %v", err)
	}
	forged := SignVoucher(p.key, &Voucher{Relay: r.ID(), Peer: p.ID(), Expiration: exp})
	if _, err := OpenVoucher(forged); !errors.Is(err, ErrBadVoucher) {
		t.Fatalf("voucher signed by another key: %v", err)
	}
}

func TestReadMsgReadsNoFurther(t *testing.T) {
	var b bytes.Buffer
	writeMsg(&b, (&HopMessage{Type: HopStatus, Status: StatusOK}).Marshal())
	b.WriteString("/multistream/1.0.0\n")
	if _, err := readHop(&b); err != nil {
		t.Fatal(err)
	}
	if b.String() != "/multistream/1.0.0\n" {
		t.Fatalf("left %q, want the relayed bytes untouched", b.String())
	}
}

// The fuzz targets decode what peers send: hop and stop messages, and
// vouchers. They must never panic, and what decodes must re-encode to
// something that decodes the same.

func FuzzUnmarshalHop(f *testing.F) {
	f.Add((&HopMessage{Type: HopConnect}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalHop(b)
		if err != nil {
			return
		}
		again, err := UnmarshalHop(m.Marshal())
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoding %+v: %+v, %v", m, again, err)
		}
	})
}

func FuzzUnmarshalStop(f *testing.F) {
	f.Add((&StopMessage{Type: StopStatus, Status: StatusOK}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalStop(b)
		if err != nil {
			return
		}
		again, err := UnmarshalStop(m.Marshal())
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoding %+v: %+v, %v", m, again, err)
		}
	})
}

func FuzzOpenVoucher(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := OpenVoucher(b)
		if err == nil && (v.Relay.Validate() != nil || v.Peer.Validate() != nil) {
			t.Fatalf("opened a voucher with invalid IDs: %+v", v)
		}
	})
}

func FuzzReadMsg(f *testing.F) {
	f.Add([]byte{0x02, 0x08, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		msg, err := readMsg(r)
		if err == nil && len(msg)+r.Len() > len(b) {
			t.Fatal("read more than the input")
		}
	})
}
