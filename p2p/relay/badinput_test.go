package relay

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/mocknet"
	"github.com/share-p2p/share/p2p/peer"
)

// lyingRelay serves the hop protocol on n with answer: what it writes
// after reading a request; then it closes its half and drains the
// stream until the client gives up.
func lyingRelay(n node, answer func(req *HopMessage) []byte) {
	n.SetHandler(HopProtocol, func(s *p2p.Stream) {
		s.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := readHop(s)
		if err != nil {
			s.Reset()
			return
		}
		s.Write(answer(req))
		s.CloseWrite()
		io.Copy(io.Discard, s)
		s.Close()
	})
}

func delimited(msg []byte) []byte {
	var b bytes.Buffer
	writeMsg(&b, msg)
	return b.Bytes()
}

func TestLyingRelayOnConnect(t *testing.T) {
	garbage := make([]byte, 8<<10)
	rand.Read(garbage)
	cases := []struct {
		name   string
		answer []byte
		check  func(error) bool
	}{
		{"bad status", delimited((&HopMessage{Type: HopStatus, Status: 999}).Marshal()), func(err error) bool {
			var se *StatusError
			return errors.As(err, &se) && se.Status == 999
		}},
		{"not a status", delimited((&HopMessage{Type: HopReserve}).Marshal()), isMalformed},
		{"not protobuf", delimited([]byte{0xff, 0xff, 0xff}), isMalformed},
		{"oversized", []byte{0xff, 0xff, 0x7f}, isMalformed},
		{"truncated", []byte{0x10, 0x08}, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		// OK, then bytes for a circuit no peer opened: the TLS handshake
		// fails and no connection is registered.
		{"ok then garbage", append(delimited((&HopMessage{Type: HopStatus, Status: StatusOK}).Marshal()), garbage...), func(err error) bool { return err != nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mn := mocknet.New()
			r, a, b := newNode(t, mn), newNode(t, mn), newNode(t, mn)
			lyingRelay(r, func(*HopMessage) []byte { return tc.answer })
			NewClient(b.Host, testLogger())
			err := b.Connect(testCtx(t), circuitTo(r, a.ID()))
			if !tc.check(err) {
				t.Fatalf("connect through a lying relay: %v", err)
			}
			if b.Connected(a.ID()) {
				t.Fatal("a connection to the target exists")
			}
		})
	}
}

func isMalformed(err error) bool { return errors.Is(err, ErrMalformed) }

func TestLyingRelayOnReserve(t *testing.T) {
	other := testKey(t)
	cases := []struct {
		name   string
		answer func(r node, req *HopMessage) []byte
		want   error
	}{
		{"voucher of another relay", func(r node, _ *HopMessage) []byte {
			exp := time.Now().Add(time.Hour)
			v := SignVoucher(other, &Voucher{Relay: r.ID(), Peer: r.ID(), Expiration: exp})
			return delimited((&HopMessage{Type: HopStatus, Status: StatusOK, Reservation: &Reservation{Expire: uint64(exp.Unix()), Voucher: v}}).Marshal())
		}, ErrBadVoucher},
		{"expired", func(r node, _ *HopMessage) []byte {
			return delimited((&HopMessage{Type: HopStatus, Status: StatusOK, Reservation: &Reservation{Expire: 1}}).Marshal())
		}, ErrMalformed},
		{"ok without reservation", func(r node, _ *HopMessage) []byte {
			return delimited((&HopMessage{Type: HopStatus, Status: StatusOK}).Marshal())
		}, ErrMalformed},
		{"refused", func(r node, _ *HopMessage) []byte {
			return delimited((&HopMessage{Type: HopStatus, Status: StatusReservationRefused}).Marshal())
		}, ErrRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mn := mocknet.New()
			r, a := newNode(t, mn), newNode(t, mn)
			lyingRelay(r, func(req *HopMessage) []byte { return tc.answer(r, req) })
			c := NewClient(a.Host, testLogger())
			connect(t, a, r)
			if _, err := c.Reserve(testCtx(t), r.ID()); !errors.Is(err, tc.want) {
				t.Fatalf("reserve: %v, want %v", err, tc.want)
			}
			if len(c.Reservations()) != 0 || len(c.Addrs()) != 0 {
				t.Fatal("a refused reservation is held")
			}
		})
	}
}

func TestReservationAddrsOfOtherPeersDropped(t *testing.T) {
	mn := mocknet.New()
	r, a, x := newNode(t, mn), newNode(t, mn), newNode(t, mn)
	exp := time.Now().Add(time.Hour)
	lyingRelay(r, func(*HopMessage) []byte {
		addrs := []ma.Multiaddr{
			append(ma.StringCast("/memory/1"), *x.ID().P2pComponent()), // another peer's
			relayCircuit(ma.StringCast("/memory/2"), r.ID()),           // nested
			ma.StringCast("/memory/3"),                                 // ours, /p2p added
			append(ma.StringCast("/memory/4"), *r.ID().P2pComponent()), // ours
		}
		return delimited((&HopMessage{Type: HopStatus, Status: StatusOK, Reservation: &Reservation{Expire: uint64(exp.Unix()), Addrs: addrs}}).Marshal())
	})
	c := NewClient(a.Host, testLogger())
	connect(t, a, r)
	held, err := c.Reserve(testCtx(t), r.ID())
	if err != nil {
		t.Fatal(err)
	}
	want := []ma.Multiaddr{relayCircuit(ma.StringCast("/memory/3"), r.ID()), relayCircuit(ma.StringCast("/memory/4"), r.ID())}
	got := c.Addrs()
	if len(held.Addrs) != 2 || len(got) != 2 || !got[0].Equal(want[0]) || !got[1].Equal(want[1]) {
		t.Fatalf("circuit addrs %v, want %v", got, want)
	}
}

// TestStopFromUnknownRelay: a peer the client holds no reservation on
// cannot push a circuit at it.
func TestStopFromUnknownRelay(t *testing.T) {
	mn := mocknet.New()
	r, a := newNode(t, mn), newNode(t, mn)
	NewClient(a.Host, testLogger())
	connect(t, r, a)
	if status, _ := pushStop(t, r, a, nil); status != StatusPermissionDenied {
		t.Fatalf("stop from a relay without a reservation: %s, want PERMISSION_DENIED", status)
	}
}

// TestStopThenGarbage: a relay the client reserved on sends, after the
// stop handshake, bytes no peer sent: the upgrade fails, the target
// resets the stream and registers nothing.
func TestStopThenGarbage(t *testing.T) {
	mn := mocknet.New()
	r, a := newNode(t, mn), newNode(t, mn)
	newService(t, r, Limits{})
	reserved(t, r, a)
	garbage := make([]byte, 4<<10)
	rand.Read(garbage)
	status, named := pushStop(t, r, a, garbage)
	if status != StatusOK {
		t.Fatalf("stop: %s", status)
	}
	if a.Connected(named) {
		t.Fatal("a connection exists to the peer the relay named")
	}
}

// pushStop opens a stop stream from r to a naming a fresh peer, and
// returns a's answer and the peer named; after an OK it writes then and
// reads until a resets the stream.
func pushStop(t *testing.T, r, a node, then []byte) (Status, peer.ID) {
	t.Helper()
	named := newNode(t, nil).ID()
	s, err := r.Conn(a.ID()).NewStream(testCtx(t), StopProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := writeMsg(s, (&StopMessage{Type: StopConnect, Peer: &PeerInfo{ID: named}}).Marshal()); err != nil {
		t.Fatal(err)
	}
	resp, err := readStop(s)
	if err != nil {
		t.Fatalf("stop answer: %v", err)
	}
	if resp.Status == StatusOK && then != nil {
		s.Write(then)
		io.Copy(io.Discard, s) // until the target resets
	}
	return resp.Status, named
}

// TestReservationFloodMemory: a thousand reservation attempts against a
// relay limited to 16 leave 16 held and the relay's memory flat.
func TestReservationFloodMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("floods")
	}
	mn := mocknet.New()
	r, a := newNode(t, mn), newNode(t, mn)
	svc := newService(t, r, Limits{Reservations: 16, ReservationsPerIP: 1000})
	c := NewClient(a.Host, testLogger())
	connect(t, a, r)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 1000 {
		// One peer renewing over and over holds one slot.
		if _, err := c.Reserve(testCtx(t), r.ID()); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if svc.Stats().Reservations != 1 {
		t.Fatalf("%d reservations after 1000 renewals by one peer, want 1", svc.Stats().Reservations)
	}
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 8<<20 {
		t.Fatalf("heap grew by %d bytes over 1000 renewals", grow)
	}
}
