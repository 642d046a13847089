package autonat

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/observed"
	"github.com/share-p2p/share/p2p/peer"
)

func newHost(t *testing.T, listen ...string) *p2p.Host {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	var addrs []ma.Multiaddr
	for _, l := range listen {
		addrs = append(addrs, ma.StringCast(l))
	}
	h, err := p2p.NewHost(context.Background(), p2p.Config{Key: key, ListenAddrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// outcomes records OnResult calls.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) add(s string) {
	o.mu.Lock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[s]++
	o.mu.Unlock()
}

func (o *outcomes) get(s string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[s]
}

// server starts an AutoNAT server on a host of its own, dialling
// private addresses (everything here is loopback).
func server(t *testing.T, cfg ServerConfig) (*p2p.Host, *outcomes) {
	t.Helper()
	h := newHost(t, "/ip4/127.0.0.1/tcp/0")
	cfg.Dialer = newHost(t)
	cfg.AllowPrivate = true
	o := &outcomes{}
	cfg.OnResult = o.add
	NewServer(h, cfg)
	return h, o
}

// client is a host listening on loopback with an AutoNAT client.
func client(t *testing.T, cfg ClientConfig, listen ...string) (*p2p.Host, *Client) {
	t.Helper()
	if len(listen) == 0 {
		listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h := newHost(t, listen...)
	cfg.AllowPrivate = true
	return h, NewClient(h, cfg)
}

func connect(t *testing.T, a, b *p2p.Host) {
	t.Helper()
	if err := a.Connect(ctxT(t), b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
}

func TestCheckReachable(t *testing.T) {
	s, so := server(t, ServerConfig{})
	h, c := client(t, ClientConfig{})
	connect(t, h, s)
	ok, err := c.Check(ctxT(t), s.ID(), h.ListenAddrs()[0])
	if err != nil || !ok {
		t.Fatalf("Check = %v, %v", ok, err)
	}
	if so.get("ok") != 1 {
		t.Fatalf("server outcomes %v", so.n)
	}
}

func TestCheckUnreachable(t *testing.T) {
	s, _ := server(t, ServerConfig{DialTimeout: 3 * time.Second})
	h, c := client(t, ClientConfig{})
	connect(t, h, s)
	dead := newHost(t, "/ip4/127.0.0.1/tcp/0")
	addr := dead.ListenAddrs()[0]
	dead.Close() // nothing listens there any more
	ok, err := c.Check(ctxT(t), s.ID(), addr)
	if err != nil || ok {
		t.Fatalf("Check of a closed port = %v, %v; want unreachable", ok, err)
	}
}

// TestDialBackToPortNotOurs: a client that asks to be dialled at another
// host's port learns nothing from it: the server's handshake finds
// another peer there, and that peer sees no nonce.
func TestDialBackToPortNotOurs(t *testing.T) {
	s, _ := server(t, ServerConfig{})
	h, c := client(t, ClientConfig{})
	connect(t, h, s)
	victim, vc := client(t, ClientConfig{})
	ok, err := c.Check(ctxT(t), s.ID(), victim.ListenAddrs()[0])
	if err != nil || ok {
		t.Fatalf("Check of another host's port = %v, %v; want unreachable", ok, err)
	}
	if len(vc.pending) != 0 || victim.Connected(h.ID()) {
		t.Fatal("the victim was involved")
	}
}

func TestPrivateRefused(t *testing.T) {
	s := newHost(t, "/ip4/127.0.0.1/tcp/0")
	o := &outcomes{}
	NewServer(s, ServerConfig{Dialer: newHost(t), OnResult: o.add})
	h, c := client(t, ClientConfig{})
	connect(t, h, s)
	if _, err := c.Check(ctxT(t), s.ID(), h.ListenAddrs()[0]); !errors.Is(err, ErrRefused) {
		t.Fatalf("Check of a loopback address at a default server: %v, want ErrRefused", err)
	}
	if o.get("refused") != 1 {
		t.Fatalf("outcomes %v", o.n)
	}
}

// TestDialDataPaid: an address on another IP than the client connects
// from (127.0.0.2, the client dials from 127.0.0.1) costs dial data; the
// client pays it and the check succeeds.
func TestDialDataPaid(t *testing.T) {
	s, _ := server(t, ServerConfig{})
	h, c := client(t, ClientConfig{}, "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.2/tcp/0")
	connect(t, h, s)
	other := h.ListenAddrs()[1]
	ok, err := c.Check(ctxT(t), s.ID(), other)
	if err != nil || !ok {
		t.Fatalf("Check with dial data = %v, %v", ok, err)
	}
	// A client that will not pay as much gets no dial.
	c.cfg.MaxDialData = 1000
	if _, err := c.Check(ctxT(t), s.ID(), other); !errors.Is(err, ErrDialDataCost) {
		t.Fatalf("err = %v, want ErrDialDataCost", err)
	}
}

// rawRequest sends a dial request on a stream of its own and returns the
// stream and its reader, for tests that play a misbehaving client.
func rawRequest(t *testing.T, h *p2p.Host, s peer.ID, addrs []ma.Multiaddr) (*p2p.Stream, *bufio.Reader) {
	t.Helper()
	req, _ := Protocols(h.Network())
	st, err := h.NewStream(ctxT(t), s, req)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	if err := p2p.WriteDelimited(st, (&Message{Type: DialRequest, Addrs: addrs, Nonce: 1}).Append(nil)); err != nil {
		t.Fatal(err)
	}
	return st, bufio.NewReader(st)
}

// TestDialDataUnpaidNoDial: a client that stops paying (or pays in
// oversized chunks) is cut off and the address is never dialled.
func TestDialDataUnpaidNoDial(t *testing.T) {
	s, so := server(t, ServerConfig{})
	h := newHost(t, "/ip4/127.0.0.1/tcp/0")
	connect(t, h, s)
	victim := newHost(t, "/ip4/127.0.0.2/tcp/0")
	st, br := rawRequest(t, h, s.ID(), victim.ListenAddrs())
	m, err := readMessage(br)
	if err != nil || m.Type != DialDataRequest || m.NumBytes != DefaultDialDataBytes || m.AddrIdx != 0 {
		t.Fatalf("got %+v, %v; want a dial data request of %d bytes", m, err, DefaultDialDataBytes)
	}
	big := (&Message{Type: DialDataResponse, Data: make([]byte, MaxDataChunk+1)}).Append(nil)
	p2p.WriteDelimited(st, big)
	if _, err := readMessage(br); err == nil {
		t.Fatal("an oversized chunk was accepted")
	}
	if so.get("bad") != 1 || so.get("ok")+so.get("dial_error") != 0 || len(victim.Peers()) != 0 {
		t.Fatalf("outcomes %v, victim peers %v", so.n, victim.Peers())
	}
}

func TestRefusesGarbageAndOtherFirstMessages(t *testing.T) {
	s, so := server(t, ServerConfig{})
	h := newHost(t, "/ip4/127.0.0.1/tcp/0")
	connect(t, h, s)
	req, _ := Protocols(h.Network())
	for _, msg := range [][]byte{
		{0xff, 0xff},
		(&Message{Type: DialResponse, Status: StatusOK}).Append(nil),
	} {
		st, err := h.NewStream(ctxT(t), s.ID(), req)
		if err != nil {
			t.Fatal(err)
		}
		st.SetDeadline(time.Now().Add(10 * time.Second))
		p2p.WriteDelimited(st, msg)
		if _, err := readMessage(bufio.NewReader(st)); err == nil {
			t.Fatalf("%x: answered", msg)
		}
	}
	if so.get("bad") != 2 {
		t.Fatalf("outcomes %v", so.n)
	}
}

func TestRateLimitPerPeer(t *testing.T) {
	now := time.Unix(1e6, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, so := server(t, ServerConfig{PerPeer: 2, Now: clock})
	h, c := client(t, ClientConfig{})
	connect(t, h, s)
	a := h.ListenAddrs()[0]
	for i := 0; i < 2; i++ {
		if ok, err := c.Check(ctxT(t), s.ID(), a); !ok || err != nil {
			t.Fatalf("check %d: %v %v", i, ok, err)
		}
	}
	if _, err := c.Check(ctxT(t), s.ID(), a); !errors.Is(err, ErrRejected) {
		t.Fatalf("third check in a minute: %v, want ErrRejected", err)
	}
	// Another peer is still served.
	h2, c2 := client(t, ClientConfig{})
	connect(t, h2, s)
	if ok, err := c2.Check(ctxT(t), s.ID(), h2.ListenAddrs()[0]); !ok || err != nil {
		t.Fatalf("another peer: %v %v", ok, err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if ok, err := c.Check(ctxT(t), s.ID(), a); !ok || err != nil {
		t.Fatalf("a minute later: %v %v", ok, err)
	}
	if so.get("rejected") != 1 {
		t.Fatalf("outcomes %v", so.n)
	}
}

func TestLimiterGlobalAndDialData(t *testing.T) {
	now := time.Unix(1e6, 0)
	l := newLimiter(100, 3, 1, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		p := peer.ID(string(rune('a' + i)))
		if !l.acquire(p) {
			t.Fatalf("request %d refused", i)
		}
		l.release(p)
	}
	if l.acquire("z") {
		t.Fatal("fourth request in a minute admitted over the global limit")
	}
	if !l.acquireData() || l.acquireData() {
		t.Fatal("dial data limit of 1 not kept")
	}
	now = now.Add(time.Minute)
	if !l.acquire("z") || l.acquire("z") {
		t.Fatal("a minute later: want one admitted, a concurrent one of the same peer refused")
	}
}

// TestOtherFamilyRefused: a server with only IPv4 addresses refuses to
// dial an IPv6 one rather than report it unreachable.
func TestOtherFamilyRefused(t *testing.T) {
	s, so := server(t, ServerConfig{})
	h := newHost(t, "/ip4/127.0.0.1/tcp/0")
	connect(t, h, s)
	_, br := rawRequest(t, h, s.ID(), []ma.Multiaddr{ma.StringCast("/ip6/::1/tcp/4001")})
	m, err := readMessage(br)
	if err != nil || m.Type != DialResponse || m.Status != StatusDialRefused {
		t.Fatalf("got %+v, %v; want a refusal", m, err)
	}
	if so.get("refused") != 1 {
		t.Fatalf("outcomes %v", so.n)
	}
}

// TestForgedObservationCheckedOnlyByItsObserver: an address one peer
// claims to see us at is a candidate only at that peer's own server:
// others are never asked to dial it (it may be a victim's).
func TestForgedObservationCheckedOnlyByItsObserver(t *testing.T) {
	h, c := client(t, ClientConfig{})
	forged := ma.StringCast("/ip4/203.0.113.9/tcp/80")
	h.Observed().Record(observed.Observation{
		Observed: forged, Local: h.ListenAddrs()[0], Remote: ma.StringCast("/ip4/192.0.2.50/tcp/9"),
		Peer: "liar", Inbound: true,
	}, h.ListenAddrs())
	if !slices.ContainsFunc(c.candidates("liar"), forged.Equal) {
		t.Fatalf("candidates at the observer %v lack its observation", c.candidates("liar"))
	}
	if slices.ContainsFunc(c.candidates("honest"), forged.Equal) {
		t.Fatalf("another server would be asked to dial %s", forged)
	}
}
