package dcutr

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/observed"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/p2p/relay"
)

// outcomes records what a Service reports.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) add(role, outcome string, _ time.Duration) {
	o.mu.Lock()
	o.got = append(o.got, role+":"+outcome)
	o.mu.Unlock()
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

// loopback accepts TCP addresses on 127.0.0.1: the tests have no public
// address.
func loopback(a ma.Multiaddr) bool {
	ip, _, ok := observed.ThinWaist(a)
	return ok && ip == netip.MustParseAddr("127.0.0.1")
}

type node struct {
	*p2p.Host
	key ed25519.PrivateKey
	out *outcomes
}

func newNode(t *testing.T) node {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	h, err := p2p.NewHost(context.Background(), p2p.Config{
		Key: key, Transport: &p2p.TCP{ReusePort: true},
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return node{Host: h, key: key, out: &outcomes{}}
}

func (n node) punching(t *testing.T) *Service {
	t.Helper()
	s := New(n.Host, Config{Allow: loopback, OnOutcome: n.out.add, DialTimeout: 3 * time.Second})
	t.Cleanup(s.Close)
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// relayed connects a to b through relay r (b holds a reservation on r)
// and returns a's connection, which is relayed. The relay has no limits.
func relayed(t *testing.T, r, a, b node) *p2p.Conn {
	t.Helper()
	return relayedWith(t, relay.Limits{}, r, a, b)
}

// relayedWith is relayed through a relay with limits lim.
func relayedWith(t *testing.T, lim relay.Limits, r, a, b node) *p2p.Conn {
	t.Helper()
	svc, err := relay.NewService(r.Host, r.key, lim, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	bc := relay.NewClient(b.Host, nil)
	if err := b.Connect(testCtx(t), r.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Reserve(testCtx(t), r.ID()); err != nil {
		t.Fatal(err)
	}
	relay.NewClient(a.Host, nil)
	circuit := r.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit"))
	if err := a.Connect(testCtx(t), peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatal(err)
	}
	c := a.Conn(b.ID())
	if c == nil || !c.Relayed() {
		t.Fatalf("a's connection to b %v: not relayed", c)
	}
	return c
}

// TestHolePunch: a reaches b through a relay; b initiates, both dial, and
// a direct connection replaces the relayed one, which closes.
func TestHolePunch(t *testing.T) {
	r, a, b := newNode(t), newNode(t), newNode(t)
	a.punching(t)
	b.punching(t)
	rc := relayed(t, r, a, b)
	waitFor(t, "a direct connection", func() bool { return a.DirectConn(b.ID()) != nil && b.DirectConn(a.ID()) != nil })
	waitFor(t, "the relayed connection to close", rc.IsClosed)
	if c := a.Conn(b.ID()); c == nil || c.Relayed() {
		t.Fatalf("a's connection to b %v: want direct", c)
	}
	waitFor(t, "both outcomes", func() bool { return len(a.out.list()) > 0 && len(b.out.list()) > 0 })
	if got := b.out.list()[0]; got != "initiator:success" {
		t.Errorf("b reported %s", got)
	}
	if got := a.out.list()[0]; got != "receiver:success" {
		t.Errorf("a reported %s", got)
	}
	if _, err := a.Ping(testCtx(t), b.ID()); err != nil {
		t.Fatalf("ping over the direct connection: %v", err)
	}
}

// TestNoPublicAddress: peers without an address Allow accepts do not
// punch; the relayed connection stays.
func TestNoPublicAddress(t *testing.T) {
	r, a, b := newNode(t), newNode(t), newNode(t)
	for _, n := range []node{a, b} {
		s := New(n.Host, Config{OnOutcome: n.out.add}) // default Allow: public only
		t.Cleanup(s.Close)
	}
	rc := relayed(t, r, a, b)
	waitFor(t, "b's outcome", func() bool { return len(b.out.list()) > 0 })
	if got := b.out.list()[0]; got != "initiator:no_addrs" {
		t.Errorf("b reported %s, want initiator:no_addrs", got)
	}
	if rc.IsClosed() || a.DirectConn(b.ID()) != nil {
		t.Fatal("the relayed connection was replaced")
	}
}

// TestGarbage: a peer that sends garbage, a wrong type, hundreds of
// addresses or only private ones is refused and nothing else happens.
func TestGarbage(t *testing.T) {
	r, a, b := newNode(t), newNode(t), newNode(t)
	a.punching(t) // the receiver; b plays a hostile initiator by hand
	rc := relayed(t, r, a, b)
	bc := b.Conn(a.ID())
	var many []ma.Multiaddr
	for i := range 400 {
		many = append(many, ma.StringCast("/ip4/10.0.0.1/tcp/"+strconv.Itoa(1000+i)))
	}
	cases := map[string][]byte{
		"garbage":   {0x05, 0xff, 0xff, 0xff, 0xff, 0xff},
		"sync":      delimited((&Msg{Type: Sync}).Marshal()),
		"oversized": append([]byte{0x81, 0x40}, make([]byte, 8193)...),
		"private":   delimited((&Msg{Type: Connect, Addrs: many[:300]}).Marshal()),
	}
	for name, msg := range cases {
		st, err := bc.NewStream(testCtx(t), Protocol)
		if err != nil {
			t.Fatal(err)
		}
		st.SetDeadline(time.Now().Add(5 * time.Second))
		st.Write(msg)
		if _, err := readMsg(bufio.NewReader(st), Connect); err == nil {
			t.Errorf("%s: a answered CONNECT", name)
		}
		st.Reset()
	}
	if rc.IsClosed() || a.DirectConn(b.ID()) != nil {
		t.Fatal("garbage changed the connection")
	}
	for _, o := range a.out.list() {
		if o == "receiver:success" {
			t.Fatal("a punched for garbage")
		}
	}
}

func delimited(b []byte) []byte {
	var buf bytes.Buffer
	p2p.WriteDelimited(&buf, b)
	return buf.Bytes()
}
