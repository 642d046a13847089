package relay

import (
	"errors"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/mocknet"
	"github.com/share-p2p/share/p2p/peer"
)

func TestReserveAdvertisesCircuitAddrs(t *testing.T) {
	mn := mocknet.New()
	r, a := newNode(t, mn), newNode(t, mn)
	newService(t, r, DefaultLimits())
	c := reserved(t, r, a)

	held := c.Reservations()
	if len(held) != 1 || held[0].Relay != r.ID() {
		t.Fatalf("reservations %+v, want one on the relay", held)
	}
	if v := held[0].Voucher; v == nil || v.Relay != r.ID() || v.Peer != a.ID() || !v.Expiration.Equal(held[0].Expire) {
		t.Fatalf("voucher %+v does not match the reservation", v)
	}
	if d := time.Until(held[0].Expire); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Fatalf("reservation expires in %s, want the default TTL of 1 h", d)
	}
	if l := held[0].Limit; l == nil || l.Duration != 120 || l.Data != 128<<10 {
		t.Fatalf("limit %+v, want libp2p's defaults (120 s, 128 KiB)", l)
	}
	want := relayCircuit(r.Addrs()[0], r.ID())
	found := false
	for _, addr := range a.Addrs() {
		found = found || addr.Equal(want)
	}
	if !found {
		t.Fatalf("host addrs %v lack the circuit address %s", a.Addrs(), want)
	}
}

func TestConnectThroughRelay(t *testing.T) {
	mn := mocknet.New()
	r, a, b := newNode(t, mn), newNode(t, mn), newNode(t, mn)
	svc := newService(t, r, Limits{CircuitBytes: 0, CircuitDuration: 0, ReservationTTL: time.Hour})
	reserved(t, r, a)
	NewClient(b.Host, testLogger())
	setEcho(a.Host)
	setEcho(b.Host)

	ai := circuitTo(r, a.ID())
	if err := b.Connect(testCtx(t), ai); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	conn := b.Conn(a.ID())
	if !conn.Relayed() || !strings.HasSuffix(conn.RemoteMultiaddr().String(), "/p2p/"+r.ID().String()+"/p2p-circuit") {
		t.Fatalf("connection %s is not marked as relayed through %s", conn.RemoteMultiaddr(), r.ID())
	}
	waitFor(t, 5*time.Second, "the target to register the relayed connection", func() bool { return a.Connected(b.ID()) })
	if in := a.Conn(b.ID()); !in.Relayed() || in.Direction() != p2p.Inbound {
		t.Fatalf("target's connection %s %s, want inbound relayed", in.Direction(), in.RemoteMultiaddr())
	}
	if conn.Limited() || a.Conn(b.ID()).Limited() {
		t.Fatal("a circuit of a relay without limits is marked limited")
	}
	// Bulk both ways: this relay has no limits.
	if err := echo(testCtx(t), b.Host, a.ID(), 1<<20); err != nil {
		t.Fatalf("echo dialer -> target: %v", err)
	}
	if err := echo(testCtx(t), a.Host, b.ID(), 1<<20); err != nil {
		t.Fatalf("echo target -> dialer: %v", err)
	}
	if st := svc.Stats(); st.Circuits != 1 || st.BytesRelayed < 4<<20 {
		t.Fatalf("stats %+v, want one circuit and at least 4 MiB relayed", st)
	}
	b.ClosePeer(a.ID())
	waitFor(t, 5*time.Second, "the circuit to close", func() bool { return svc.Stats().Circuits == 0 })
}

func TestCircuitByteLimit(t *testing.T) {
	mn := mocknet.New()
	r, a, b := newNode(t, mn), newNode(t, mn), newNode(t, mn)
	newService(t, r, Limits{CircuitBytes: 64 << 10})
	reserved(t, r, a)
	NewClient(b.Host, testLogger())
	setEcho(a.Host)
	if err := b.Connect(testCtx(t), circuitTo(r, a.ID())); err != nil {
		t.Fatal(err)
	}
	// Data streams do not use a limited connection (and no hole punch
	// runs here); a stream that opts in does, within the relay's limit.
	if err := echo(testCtx(t), b.Host, a.ID(), 1<<10); !errors.Is(err, p2p.ErrLimitedConn) {
		t.Fatalf("echo over a limited circuit: %v, want ErrLimitedConn", err)
	}
	optIn := p2p.WithLimitedConn(testCtx(t))
	if err := echo(optIn, b.Host, a.ID(), 1<<10); err != nil {
		t.Fatalf("a small echo within the limit: %v", err)
	}
	conn := b.Conn(a.ID())
	if !conn.Limited() || !a.Conn(b.ID()).Limited() {
		t.Fatal("a circuit with a byte limit is not marked limited at both ends")
	}
	if err := echo(optIn, b.Host, a.ID(), 256<<10); err == nil {
		t.Fatal("256 KiB crossed a circuit limited to 64 KiB")
	}
	select {
	case <-conn.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the relayed connection outlived its byte limit")
	}
}

func TestCircuitRefusals(t *testing.T) {
	mn := mocknet.New()
	r, a, b, c := newNode(t, mn), newNode(t, mn), newNode(t, mn), newNode(t, mn)
	newService(t, r, Limits{CircuitsPerPeer: 1})
	reserved(t, r, a)
	NewClient(b.Host, testLogger())
	NewClient(c.Host, testLogger())

	// A peer without a reservation, and one the relay never heard of.
	for _, target := range []peer.ID{c.ID(), newNode(t, mn).ID()} {
		err := b.Connect(testCtx(t), circuitTo(r, target))
		var se *StatusError
		if !errors.As(err, &se) || se.Status != StatusNoReservation {
			t.Fatalf("connect to a peer without a reservation: %v, want NO_RESERVATION", err)
		}
	}
	if err := b.Connect(testCtx(t), circuitTo(r, a.ID())); err != nil {
		t.Fatal(err)
	}
	err := c.Connect(testCtx(t), circuitTo(r, a.ID()))
	var se *StatusError
	if !errors.As(err, &se) || se.Status != StatusResourceLimitExceeded {
		t.Fatalf("a second circuit to a peer limited to one: %v, want RESOURCE_LIMIT_EXCEEDED", err)
	}
}

func TestReservationLimits(t *testing.T) {
	mn := mocknet.New()
	r := newNode(t, mn)
	svc := newService(t, r, Limits{Reservations: 20, ReservationsPerIP: 100})
	ok, refused := 0, 0
	for range 50 {
		n := newNode(t, mn)
		c := NewClient(n.Host, testLogger())
		connect(t, n, r)
		_, err := c.Reserve(testCtx(t), r.ID())
		var se *StatusError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &se) && se.Status == StatusReservationRefused:
			refused++
		default:
			t.Fatalf("reserve: %v", err)
		}
	}
	if ok != 20 || refused != 30 || svc.Stats().Reservations != 20 {
		t.Fatalf("%d granted, %d refused, %d held; want 20, 30, 20", ok, refused, svc.Stats().Reservations)
	}
}

func TestReservationsPerIP(t *testing.T) {
	r := newNode(t, nil) // TCP: every peer comes from 127.0.0.1
	newService(t, r, Limits{ReservationsPerIP: 2})
	for i := range 3 {
		n := newNode(t, nil)
		c := NewClient(n.Host, testLogger())
		connect(t, n, r)
		_, err := c.Reserve(testCtx(t), r.ID())
		if i < 2 && err != nil {
			t.Fatalf("reservation %d: %v", i, err)
		}
		var se *StatusError
		if i == 2 && (!errors.As(err, &se) || se.Status != StatusReservationRefused) {
			t.Fatalf("third reservation from one IP: %v, want RESERVATION_REFUSED", err)
		}
	}
}

func TestReservationDroppedOnDisconnect(t *testing.T) {
	mn := mocknet.New()
	r, a := newNode(t, mn), newNode(t, mn)
	svc := newService(t, r, Limits{})
	reserved(t, r, a)
	a.ClosePeer(r.ID())
	waitFor(t, 5*time.Second, "the relay to drop the reservation", func() bool { return svc.Stats().Reservations == 0 })
}

func TestDirectConnectionReplacesRelayed(t *testing.T) {
	mn := mocknet.New()
	r, a, b := newNode(t, mn), newNode(t, mn), newNode(t, mn)
	newService(t, r, Limits{})
	reserved(t, r, a)
	NewClient(b.Host, testLogger())
	if err := b.Connect(testCtx(t), circuitTo(r, a.ID())); err != nil {
		t.Fatal(err)
	}
	relayed := b.Conn(a.ID())
	// Without a direct address, Connect is content with the circuit.
	if err := b.Connect(testCtx(t), peer.AddrInfo{ID: a.ID()}); err != nil || b.Conn(a.ID()) != relayed {
		t.Fatalf("connect without addresses: %v, conn %v; want the relayed one kept", err, b.Conn(a.ID()))
	}
	// A dead direct address keeps the circuit (identify told b the live
	// ones: forget them).
	b.Peerstore().ClearAddrs(a.ID())
	if err := b.Connect(testCtx(t), peer.AddrInfo{ID: a.ID(), Addrs: []ma.Multiaddr{ma.StringCast("/memory/999999")}}); err != nil || b.Conn(a.ID()) != relayed {
		t.Fatalf("connect at a dead address: %v; want the relayed connection kept", err)
	}
	if err := b.Connect(testCtx(t), peer.AddrInfo{ID: a.ID(), Addrs: a.ListenAddrs()}); err != nil {
		t.Fatal(err)
	}
	if c := b.Conn(a.ID()); c == relayed || c.Relayed() {
		t.Fatalf("after a direct connect the connection is %s, want direct", c.RemoteMultiaddr())
	}
	select {
	case <-relayed.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the relayed connection stayed open beside the direct one")
	}
	waitFor(t, 5*time.Second, "the target to keep only the direct connection", func() bool {
		cs := a.ConnsToPeer(b.ID())
		return len(cs) == 1 && !cs[0].Relayed()
	})
}
