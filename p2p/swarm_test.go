package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/mocknet"
	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/p2p/sec"
)

func TestTenHosts(t *testing.T) {
	const n = 10
	hosts := make([]*Host, n)
	for i := range hosts {
		hosts[i] = newTestHost(t, Config{})
		setEcho(hosts[i])
	}
	// Every pair dials from both ends at once: simultaneous dials must
	// collapse to one connection per pair.
	var wg sync.WaitGroup
	errc := make(chan error, n*n)
	for i := range hosts {
		for j := range hosts {
			if i == j {
				continue
			}
			wg.Add(1)
			go func(a, b *Host) {
				defer wg.Done()
				if err := a.Connect(testCtx(t), b.AddrInfo()); err != nil {
					errc <- err
				}
			}(hosts[i], hosts[j])
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for _, h := range hosts {
		waitFor(t, 10*time.Second, "one connection per peer", func() bool {
			if len(h.Peers()) != n-1 {
				return false
			}
			for _, p := range h.Peers() {
				if len(h.ConnsToPeer(p)) != 1 {
					return false
				}
			}
			return true
		})
	}
	// Streams both ways over every pair.
	for i := range hosts {
		for j := range hosts {
			if i != j {
				wg.Add(1)
				go func(a, b *Host) {
					defer wg.Done()
					echoRoundTrip(t, a, b.ID(), 64<<10)
				}(hosts[i], hosts[j])
			}
		}
	}
	wg.Wait()
	// Close one host; the others notice, and a fresh host with the same
	// key is reachable again.
	key := hosts[0].cfg.Key
	hosts[0].Close()
	for _, h := range hosts[1:] {
		waitFor(t, 10*time.Second, "disconnect", func() bool { return !h.Connected(hosts[0].ID()) })
	}
	again := newTestHost(t, Config{Key: key})
	setEcho(again)
	connect(t, hosts[1], again)
	echoRoundTrip(t, hosts[1], again.ID(), 1000)
	echoRoundTrip(t, again, hosts[1].ID(), 1000)
}

// dialRecorder is a slog handler that notes whether its host completed
// an outbound handshake ("connected", or closed as a duplicate).
type dialRecorder struct {
	mu     sync.Mutex
	dialed bool
}

func (r *dialRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *dialRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &dialAttrs{r: r, attrs: as}
}
func (r *dialRecorder) WithGroup(string) slog.Handler { return r }
func (r *dialRecorder) Handle(ctx context.Context, rec slog.Record) error {
	return (&dialAttrs{r: r}).Handle(ctx, rec)
}

// dialAttrs is a dialRecorder's handler with attributes (the connection
// logger's "dir").
type dialAttrs struct {
	r     *dialRecorder
	attrs []slog.Attr
}

func (d *dialAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (d *dialAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return &dialAttrs{r: d.r, attrs: append(slices.Clone(d.attrs), as...)}
}
func (d *dialAttrs) WithGroup(string) slog.Handler { return d }
func (d *dialAttrs) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != "connected" && rec.Message != "closing connection" {
		return nil
	}
	attrs := slices.Clone(d.attrs)
	rec.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	for _, a := range attrs {
		if a.Key == "dir" && a.Value.String() == "outbound" {
			d.r.mu.Lock()
			d.r.dialed = true
			d.r.mu.Unlock()
		}
	}
	return nil
}

func (r *dialRecorder) didDial() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dialed
}

func TestSimultaneousDial(t *testing.T) {
	for i := 0; i < 10; i++ {
		var ra, rb dialRecorder
		a := newTestHost(t, Config{Logger: slog.New(&ra)})
		b := newTestHost(t, Config{Logger: slog.New(&rb)})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, pair := range [][2]*Host{{a, b}, {b, a}} {
			wg.Add(1)
			go func(x, y *Host) {
				defer wg.Done()
				<-start
				if err := x.Connect(testCtx(t), y.AddrInfo()); err != nil {
					t.Error(err)
				}
			}(pair[0], pair[1])
		}
		close(start)
		wg.Wait()
		// Both sides settle on the same single connection.
		waitFor(t, 10*time.Second, "collapse", func() bool {
			as, bs := a.ConnsToPeer(b.ID()), b.ConnsToPeer(a.ID())
			return len(as) == 1 && len(bs) == 1 && as[0].LocalMultiaddr().Equal(bs[0].RemoteMultiaddr())
		})
		ca := a.Conn(b.ID())
		dialer := a.ID()
		if ca.Direction() == Inbound {
			dialer = b.ID()
		}
		if min(a.ID(), b.ID()) != dialer && ra.didDial() && rb.didDial() {
			// both ends dialled (under load one may find the other's
			// connection before it dials): the smaller ID's must win
			t.Fatalf("kept the connection dialled by the larger ID")
		}
		a.Close()
		b.Close()
	}
}

func TestWrongPeerID(t *testing.T) {
	a := newTestHost(t, Config{})
	b := newTestHost(t, Config{})
	other := newTestHost(t, Config{})
	err := a.Connect(testCtx(t), peer.AddrInfo{ID: other.ID(), Addrs: b.Addrs()})
	if !errors.Is(err, sec.ErrPeerMismatch) {
		t.Fatalf("dial with the wrong /p2p/ID: %v, want ErrPeerMismatch", err)
	}
	if a.Connected(b.ID()) || a.Connected(other.ID()) {
		t.Fatal("a connection survived")
	}
	waitFor(t, 5*time.Second, "b to drop the connection", func() bool { return len(b.Peers()) == 0 })
	// A dial target string with the right ID works.
	target := b.AddrInfo().P2pAddrs()[0]
	if _, err := a.ConnectAddr(testCtx(t), target); err != nil {
		t.Fatal(err)
	}
}

func TestSelfDial(t *testing.T) {
	a := newTestHost(t, Config{})
	if err := a.Connect(testCtx(t), a.AddrInfo()); !errors.Is(err, ErrSelfDial) {
		t.Fatalf("err = %v", err)
	}
}

func TestNegotiation(t *testing.T) {
	a := newTestHost(t, Config{Transport: mocknet.New()})
	b := newTestHost(t, Config{Transport: a.cfg.Transport})
	setEcho(b)
	connect(t, a, b)
	ctx := testCtx(t)

	// Unknown protocol, optimistic: the refusal shows on Read.
	s, err := a.NewStream(ctx, b.ID(), "/nope/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hi"))
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, mss.ErrNotSupported) {
		t.Fatalf("read = %v, want ErrNotSupported", err)
	}
	s.Reset()

	// Several protocols: the first supported one is chosen.
	s, err = a.NewStream(ctx, b.ID(), "/nope/1.0.0", echoProto)
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol() != echoProto {
		t.Fatalf("protocol = %q", s.Protocol())
	}
	s.Close()
	_, err = a.NewStream(ctx, b.ID(), "/nope/1.0.0", "/nope/2.0.0")
	if !errors.Is(err, mss.ErrNotSupported) {
		t.Fatalf("err = %v", err)
	}

	// A removed handler answers na.
	b.RemoveHandler(echoProto)
	s, _ = a.NewStream(ctx, b.ID(), echoProto)
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, mss.ErrNotSupported) {
		t.Fatalf("after RemoveHandler: %v", err)
	}
	if got, want := a.Protocol("kad"), "/share/kad/1.0.0"; got != want {
		t.Fatalf("Protocol = %q", got)
	}
	if got := ProtocolID("other", "blocks", "1.0.0"); got != "/other/blocks/1.0.0" {
		t.Fatalf("ProtocolID = %q", got)
	}
}

// TestNetworksDoNotMix: hosts of two networks cannot keep a connection:
// Connect is refused with ErrOtherNetwork, both ends close it, and a
// stream to the other network is not served.
func TestNetworksDoNotMix(t *testing.T) {
	mem := mocknet.New()
	a := newTestHost(t, Config{Transport: mem, Network: "alpha"})
	b := newTestHost(t, Config{Transport: mem, Network: "beta"})
	err := a.Connect(testCtx(t), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
	// Whichever end notices first closes it: the other sees it closed.
	if !errors.Is(err, ErrOtherNetwork) && !errors.Is(err, ErrNotConnected) {
		t.Fatalf("connect across networks: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.Connected(b.ID()) || b.Connected(a.ID()) {
		if time.Now().After(deadline) {
			t.Fatalf("still connected: a->b %v, b->a %v", a.Connected(b.ID()), b.Connected(a.ID()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.Ping(testCtx(t), b.ID()); err == nil {
		t.Fatal("ping across networks succeeded")
	}
	// Same network: connected and identified.
	c := newTestHost(t, Config{Transport: mem, Network: "alpha"})
	connect(t, a, c)
	if !a.Connected(c.ID()) {
		t.Fatal("same network: not connected")
	}
}

func TestEvents(t *testing.T) {
	mem := mocknet.New()
	a := newTestHost(t, Config{Transport: mem})
	b := newTestHost(t, Config{Transport: mem})
	sub := a.Subscribe()
	defer sub.Close()
	connect(t, a, b)
	next := func(want EventKind) {
		t.Helper()
		select {
		case e := <-sub.Events():
			if e.Kind != want || e.Peer != b.ID() {
				t.Fatalf("event %v %s, want %v %s", e.Kind, e.Peer.ShortString(), want, b.ID().ShortString())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %v event", want)
		}
	}
	next(Connected)
	next(Identified)
	b.Close()
	next(Disconnected)
}

func TestTrim(t *testing.T) {
	mem := mocknet.New()
	a := newTestHost(t, Config{Transport: mem, Limits: Limits{HighWater: 3, LowWater: 1, GracePeriod: time.Nanosecond, TrimInterval: time.Hour}})
	var others []*Host
	for i := 0; i < 4; i++ {
		o := newTestHost(t, Config{Transport: mem})
		others = append(others, o)
	}
	a.Protect(others[0].ID(), "keep")
	for _, o := range others {
		// Not connect(): trimming may close a connection at once.
		if err := a.Connect(testCtx(t), o.AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "trim to low water", func() bool { return len(a.Peers()) <= 1 })
	if !a.Connected(others[0].ID()) {
		t.Fatal("the protected peer was trimmed")
	}
}

func TestInboundLimit(t *testing.T) {
	mem := mocknet.New()
	a := newTestHost(t, Config{Transport: mem, Limits: Limits{MaxInbound: 2}})
	for i := 0; i < 2; i++ {
		connect(t, newTestHost(t, Config{Transport: mem}), a)
	}
	o := newTestHost(t, Config{Transport: mem})
	if err := o.Connect(testCtx(t), a.AddrInfo()); err == nil {
		// The dialler may finish its handshake before the listener
		// refuses; the connection must not survive.
		waitFor(t, 5*time.Second, "refused connection closed", func() bool { return !o.Connected(a.ID()) })
	}
	if n := len(a.Peers()); n != 2 {
		t.Fatalf("%d inbound peers, want 2", n)
	}
}

// memStore is a share.KV in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

var errMissing = errors.New("missing")

func (s *memStore) Get(k []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[string(k)]
	if !ok {
		return nil, errMissing
	}
	return v, nil
}
func (s *memStore) Set(k, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[string(k)] = append([]byte(nil), v...)
	return nil
}
func (s *memStore) Delete(k []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, string(k))
	return nil
}
func (s *memStore) Iterate(fn func(k, v []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if err := fn([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

func TestPeerstorePersistence(t *testing.T) {
	store := &memStore{m: map[string][]byte{}}
	key := testKey(t)
	a := newTestHost(t, Config{Key: key, AddrStore: store})
	b := newTestHost(t, Config{})
	connect(t, a, b)
	<-a.Conn(b.ID()).Identified()
	a.Close()
	store.m["junk"] = []byte{9, 9}

	a2 := newTestHost(t, Config{Key: key, AddrStore: store, IsNotFound: func(err error) bool { return errors.Is(err, errMissing) }})
	addrs := a2.Peerstore().Addrs(b.ID())
	if len(addrs) == 0 || !ma.Contains(addrs, b.Addrs()[0]) {
		t.Fatalf("restored addrs %v, want %v", addrs, b.Addrs())
	}
	if _, ok := store.m["junk"]; ok {
		t.Fatal("bad record kept")
	}
	// Dial by ID alone, from the restored addresses.
	if err := a2.Connect(testCtx(t), peer.AddrInfo{ID: b.ID()}); err != nil {
		t.Fatal(err)
	}
}

func TestPeerstoreTTL(t *testing.T) {
	ps, _ := NewPeerstore(nil, nil)
	now := time.Now()
	ps.now = func() time.Time { return now }
	id := newTestHost(t, Config{Transport: mocknet.New()}).ID()
	a1 := ma.StringCast("/ip4/1.2.3.4/tcp/1")
	a2 := ma.StringCast("/ip4/1.2.3.4/tcp/2")
	ps.AddAddrs(id, []ma.Multiaddr{a1}, time.Minute)
	ps.AddAddrs(id, []ma.Multiaddr{a2}, time.Hour)
	ps.AddAddrs(id, []ma.Multiaddr{a2}, time.Second) // does not shorten
	now = now.Add(2 * time.Minute)
	if got := ps.Addrs(id); len(got) != 1 || !got[0].Equal(a2) {
		t.Fatalf("after a minute: %v", got)
	}
	ps.SetAddrs(id, []ma.Multiaddr{a2}, 0)
	if got := ps.Addrs(id); len(got) != 0 {
		t.Fatalf("after SetAddrs 0: %v", got)
	}
}

func TestAddrsExpanded(t *testing.T) {
	h := newTestHost(t, Config{ListenAddrs: []ma.Multiaddr{
		ma.StringCast("/ip4/0.0.0.0/tcp/0"),
		ma.StringCast("/ip6/::/tcp/0"),
	}})
	addrs := h.Addrs()
	var has4, has6 bool
	for _, a := range addrs {
		if a.String() == fmt.Sprintf("/ip4/127.0.0.1/tcp/%s", port(t, h.ListenAddrs()[0])) {
			has4 = true
		}
		if a.String() == fmt.Sprintf("/ip6/::1/tcp/%s", port(t, h.ListenAddrs()[1])) {
			has6 = true
		}
		if v, _ := a.ValueForProtocol(ma.P_TCP); v == "0" {
			t.Fatalf("port 0 reported: %v", a)
		}
	}
	if !has4 || !has6 {
		t.Fatalf("Addrs() = %v: missing loopback of a family", addrs)
	}
	// Both families dial.
	for _, a := range []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/" + port(t, h.ListenAddrs()[0])), ma.StringCast("/ip6/::1/tcp/" + port(t, h.ListenAddrs()[1]))} {
		c := newTestHost(t, Config{ListenAddrs: []ma.Multiaddr{}})
		if err := c.Connect(testCtx(t), peer.AddrInfo{ID: h.ID(), Addrs: []ma.Multiaddr{a}}); err != nil {
			t.Fatalf("dial %v: %v", a, err)
		}
	}
}

func port(t *testing.T, a ma.Multiaddr) string {
	t.Helper()
	p, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestObservedAddr(t *testing.T) {
	a := newTestHost(t, Config{})
	b := newTestHost(t, Config{})
	connect(t, a, b)
	<-a.Conn(b.ID()).Identified()
	obs := a.ObservedAddrs()
	if len(obs) != 1 || !obs[0].Equal(a.Conn(b.ID()).LocalMultiaddr()) {
		t.Fatalf("observed %v, want %v", obs, a.Conn(b.ID()).LocalMultiaddr())
	}
}

func TestConnectCancel(t *testing.T) {
	a := newTestHost(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := newTestHost(t, Config{})
	if err := a.Connect(ctx, b.AddrInfo()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// TestDialDeadAddressFirst puts an address that never answers before the
// good one: the dial must not wait for the dead one's timeout.
func TestDialDeadAddressFirst(t *testing.T) {
	// A listener that accepts and never speaks.
	mem := mocknet.New()
	dead, err := mem.Listen(ma.StringCast("/memory/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	go func() {
		for {
			c, err := dead.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	a := newTestHost(t, Config{Transport: mem})
	b := newTestHost(t, Config{Transport: mem})
	start := time.Now()
	err = a.Connect(testCtx(t), peer.AddrInfo{ID: b.ID(), Addrs: append([]ma.Multiaddr{dead.Multiaddr()}, b.Addrs()...)})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("connect took %v", took)
	}
}

// magicProtector stands in for a private-network layer: both sides send a
// network tag first and refuse a different one.
func magicProtector(tag string) Protector {
	return func(c net.Conn) (net.Conn, error) {
		if _, err := c.Write([]byte(tag)); err != nil {
			return nil, err
		}
		got := make([]byte, len(tag))
		if _, err := io.ReadFull(c, got); err != nil {
			return nil, err
		}
		if string(got) != tag {
			return nil, errors.New("not in this private network")
		}
		return c, nil
	}
}

func TestProtector(t *testing.T) {
	mem := mocknet.New()
	a := newTestHost(t, Config{Transport: mem, Protector: magicProtector("net1")})
	b := newTestHost(t, Config{Transport: mem, Protector: magicProtector("net1")})
	outsider := newTestHost(t, Config{Transport: mem, Protector: magicProtector("net2")})
	open := newTestHost(t, Config{Transport: mem, HandshakeTimeout: 500 * time.Millisecond})
	setEcho(b)
	connect(t, a, b)
	echoRoundTrip(t, a, b.ID(), 1000)
	for _, h := range []*Host{outsider, open} {
		if err := h.Connect(testCtx(t), b.AddrInfo()); err == nil {
			t.Fatalf("a host outside the private network connected")
		}
	}
}

// Connections to a peer that identify says is not share (kubo, any
// go-libp2p peer) are not collapsed: such a peer opens streams on any of
// them, and closing one would reset those. Both hosts here announce
// another agent, so neither collapses.
func TestNoCollapseWithOtherAgents(t *testing.T) {
	a := newTestHost(t, Config{AgentVersion: "kubo/0.43.1"})
	k := newTestHost(t, Config{AgentVersion: "kubo/0.43.1"})
	setEcho(a)
	setEcho(k)
	connect(t, a, k)
	first := a.Conn(k.ID())
	<-first.Identified()
	waitFor(t, 5*time.Second, "k to identify a", func() bool { return k.ps.AgentVersion(a.ID()) != "" })
	s, err := a.NewStream(testCtx(t), k.ID(), echoProto)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := k.DialAddr(testCtx(t), a.Addrs()[0], a.ID())
	if err != nil {
		t.Fatalf("a second connection from k: %v", err)
	}
	<-c.Identified()
	waitFor(t, 5*time.Second, "a to keep both connections", func() bool { return len(a.ConnsToPeer(k.ID())) == 2 })
	if first.IsClosed() || c.IsClosed() {
		t.Fatal("a connection was closed")
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Write([]byte("still there")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "still there" {
		t.Fatalf("the stream on the first connection: %q, %v", buf, err)
	}
}

// TestDialOrder: the addresses a caller gives are tried before those the
// peerstore knows (a circuit address given to connect is not tried after
// every known, maybe dead, direct address), direct before relayed within
// each, each once.
func TestDialOrder(t *testing.T) {
	m := ma.StringCast
	relay := "/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
	given := []ma.Multiaddr{m(relay), m("/ip4/10.0.0.9/tcp/4001")}
	known := []ma.Multiaddr{m("/ip4/192.0.2.7/tcp/4001"), m("/ip4/10.0.0.9/tcp/4001"), m("/dns4/x.example/tcp/1")}
	canDial := func(a ma.Multiaddr) bool { return !strings.HasPrefix(a.String(), "/dns4") }
	var got []string
	for _, a := range dialOrder(given, known, canDial) {
		got = append(got, a.String())
	}
	want := []string{"/ip4/10.0.0.9/tcp/4001", relay, "/ip4/192.0.2.7/tcp/4001"}
	if !slices.Equal(got, want) {
		t.Fatalf("dial order\n got %q\nwant %q", got, want)
	}
}
