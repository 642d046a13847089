package bitswap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/mocknet"
	"github.com/share-p2p/share/p2p/peer"
)

// newHost starts a host of network ipfs on mem, or on loopback TCP if
// mem is nil.
func newHost(t testing.TB, mem *mocknet.Network) *p2p.Host {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	cfg := p2p.Config{Key: key, Network: "ipfs", ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}}
	if mem != nil {
		cfg.Transport, cfg.ListenAddrs = mem, []ma.Multiaddr{ma.StringCast("/memory/0")}
	}
	h, err := p2p.NewHost(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connectHosts(t testing.TB, a, b *p2p.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
}

// client is a Bitswap peer of a test: what arrives from the server is
// collected.
type client struct {
	t  testing.TB
	h  *p2p.Host
	bs *Bitswap

	mu     sync.Mutex
	msgs   []*Message
	arrive chan struct{}
}

func newClient(t testing.TB, mem *mocknet.Network, server *p2p.Host) *client {
	t.Helper()
	c := &client{t: t, h: newHost(t, mem), arrive: make(chan struct{}, 1)}
	c.bs = New(c.h.Streams(), Config{Store: dag.NewMemStore()})
	t.Cleanup(func() { c.bs.Close() })
	c.bs.SetReceiver(func(p peer.ID, m *Message) {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
		select {
		case c.arrive <- struct{}{}:
		default:
		}
	})
	connectHosts(t, c.h, server)
	return c
}

func (c *client) send(to peer.ID, m *Message) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.bs.Send(ctx, to, m); err != nil {
		c.t.Fatal(err)
	}
}

// answers is what the client got, by CID: "block", "have", "dont-have".
func (c *client) answers() map[cid.Cid][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := map[cid.Cid][]string{}
	for _, m := range c.msgs {
		for _, b := range m.Blocks {
			id, err := b.CID()
			if err != nil {
				c.t.Errorf("block: %v", err)
			}
			got[id] = append(got[id], "block")
		}
		for _, p := range m.Presences {
			got[p.Cid] = append(got[p.Cid], map[bool]string{false: "have", true: "dont-have"}[p.DontHave])
		}
	}
	return got
}

// waitAnswers waits until the client has answers for n CIDs.
func (c *client) waitAnswers(n int) map[cid.Cid][]string {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := c.answers(); len(got) >= n {
			return got
		}
		select {
		case <-c.arrive:
		case <-deadline:
			c.t.Fatalf("answers for %d CIDs after 10 s, want %d: %v", len(c.answers()), n, c.answers())
		}
	}
}

type server struct {
	h     *p2p.Host
	bs    *Bitswap
	store *dag.MemStore
	bad   chan error
}

func newServer(t testing.TB, mem *mocknet.Network, cfg Config, store share.Getter) *server {
	t.Helper()
	s := &server{h: newHost(t, mem), store: dag.NewMemStore(), bad: make(chan error, 16)}
	if store == nil {
		store = s.store
	}
	cfg.Store = store
	cfg.OnBadPeer = func(p peer.ID, err error) { s.bad <- err }
	s.bs = New(s.h.Streams(), cfg)
	t.Cleanup(func() { s.bs.Close() })
	return s
}

func (s *server) add(data string) cid.Cid {
	c := dag.Sum(dag.Raw, []byte(data))
	s.store.Set(c, []byte(data))
	return c
}

// peerState returns the server's state of p once it has one.
func (s *server) peerState(t testing.TB, p peer.ID) *peerState {
	t.Helper()
	var ps *peerState
	waitFor(t, func() bool {
		s.bs.mu.Lock()
		defer s.bs.mu.Unlock()
		ps = s.bs.peers[p]
		return ps != nil
	}, "the server has no state of the peer")
	return ps
}

func waitFor(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantsOf(ps *peerState) map[cid.Cid]WantType {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := map[cid.Cid]WantType{}
	for c, w := range ps.wants {
		out[c] = w.typ
	}
	return out
}

func TestWantHaveAndBlock(t *testing.T) {
	mem := mocknet.New()
	s := newServer(t, mem, Config{}, nil)
	c := newClient(t, mem, s.h)
	have1, have2 := s.add("one"), s.add("two")
	missing1, missing2 := dag.Sum(dag.Raw, []byte("no")), dag.Sum(dag.Raw, []byte("none"))
	silent := dag.Sum(dag.Raw, []byte("silent"))
	c.send(s.h.ID(), &Message{Wants: []Entry{
		{Cid: have1, Type: WantHave, SendDontHave: true},
		{Cid: have2, Type: WantBlock, SendDontHave: true},
		{Cid: missing1, Type: WantHave, SendDontHave: true},
		{Cid: missing2, Type: WantBlock, SendDontHave: true},
		{Cid: silent, Type: WantBlock}, // no DONT_HAVE asked: no answer
	}})
	got := c.waitAnswers(4)
	want := map[cid.Cid][]string{have1: {"have"}, have2: {"block"}, missing1: {"dont-have"}, missing2: {"dont-have"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
	// Answered wants are forgotten; unanswered ones are kept.
	ps := s.peerState(t, c.h.ID())
	waitFor(t, func() bool { _, ok := wantsOf(ps)[have2]; return !ok }, "the answered want-block is still kept")
	kept := wantsOf(ps)
	if len(kept) != 3 || kept[missing1] != WantHave || kept[missing2] != WantBlock || kept[silent] != WantBlock {
		t.Fatalf("kept wants %v; want the three unanswered", kept)
	}
}

// blockingStore holds every Get until release is closed.
type blockingStore struct {
	*dag.MemStore
	entered chan cid.Cid
	release chan struct{}
}

func (s *blockingStore) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	s.entered <- c
	select {
	case <-s.release:
	case <-ctx.Done():
		return share.Block{}, ctx.Err()
	}
	return s.MemStore.Get(ctx, c)
}

func TestCancelAndFull(t *testing.T) {
	mem := mocknet.New()
	bs := &blockingStore{MemStore: dag.NewMemStore(), entered: make(chan cid.Cid, 16), release: make(chan struct{})}
	s := newServer(t, mem, Config{}, bs)
	c := newClient(t, mem, s.h)
	var x, y, z cid.Cid
	for _, p := range []*cid.Cid{&x, &y, &z} {
		data := fmt.Sprintf("block %p", p)
		*p = dag.Sum(dag.Raw, []byte(data))
		bs.Set(*p, []byte(data))
	}
	c.send(s.h.ID(), &Message{Wants: []Entry{{Cid: x}, {Cid: y}, {Cid: z}}})
	if got := <-bs.entered; got != x {
		t.Fatalf("first load %s, want %s", got, x)
	}
	// While x loads, y is cancelled and a full wantlist drops z.
	c.send(s.h.ID(), &Message{Wants: []Entry{{Cid: y, Cancel: true}}})
	ps := s.peerState(t, c.h.ID())
	waitFor(t, func() bool { _, ok := wantsOf(ps)[y]; return !ok }, "cancel not applied")
	other := dag.Sum(dag.Raw, []byte("other"))
	c.send(s.h.ID(), &Message{Full: true, Wants: []Entry{{Cid: x}, {Cid: other, Type: WantHave, SendDontHave: true}}})
	waitFor(t, func() bool { _, ok := wantsOf(ps)[z]; return !ok }, "full wantlist did not drop z")
	close(bs.release)
	got := c.waitAnswers(2)
	want := map[cid.Cid][]string{x: {"block"}, other: {"dont-have"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
	if len(bs.entered) != 0 {
		t.Fatalf("%d more blocks loaded; cancelled wants must not be", len(bs.entered))
	}
}

// The server queues at most MaxRequests wants of a peer and batches
// blocks into messages of about MaxBufferedBytes; everything is answered.
func TestLimits(t *testing.T) {
	mem := mocknet.New()
	bs := &blockingStore{MemStore: dag.NewMemStore(), entered: make(chan cid.Cid, 100), release: make(chan struct{})}
	s := newServer(t, mem, Config{MaxRequests: 4, MaxBufferedBytes: 2500}, bs)
	c := newClient(t, mem, s.h)
	var wants []Entry
	for i := range 40 {
		data := bytes.Repeat([]byte{byte(i)}, 1000)
		id := dag.Sum(dag.Raw, data)
		bs.Set(id, data)
		wants = append(wants, Entry{Cid: id})
	}
	c.send(s.h.ID(), &Message{Wants: wants[:20]})
	c.send(s.h.ID(), &Message{Wants: wants[20:]})
	<-bs.entered
	ps := s.peerState(t, c.h.ID())
	// The sender holds one want, the queue MaxRequests; the reader waits.
	waitFor(t, func() bool { ps.mu.Lock(); defer ps.mu.Unlock(); return len(ps.queue) == 4 }, "queue not full")
	ps.mu.Lock()
	kept := len(ps.wants)
	ps.mu.Unlock()
	if kept > 1+4+20 {
		t.Fatalf("%d wants read while the queue was full", kept)
	}
	close(bs.release)
	c.waitAnswers(40)
	c.mu.Lock()
	defer c.mu.Unlock()
	batched := false
	for _, m := range c.msgs {
		if len(m.Blocks) > 3 {
			t.Errorf("message of %d blocks of 1000 bytes; MaxBufferedBytes is 2500", len(m.Blocks))
		}
		batched = batched || len(m.Blocks) > 1
	}
	if !batched {
		t.Error("no message carried more than one block")
	}
}

// rawStream opens a Bitswap stream from h to p, for sending bytes as they
// are.
func rawStream(t testing.TB, h *p2p.Host, p peer.ID, proto string) *p2p.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, p, proto)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A peer that floods its wantlist or sends a malformed or oversized
// message is cut off, while an honest peer is served.
func TestBadPeersCutOff(t *testing.T) {
	honestData := "honest"
	for _, tc := range []struct {
		name string
		msg  func(t *testing.T) []byte
		want error
	}{
		{"flood", func(t *testing.T) []byte {
			var m Message
			for i := range 11 {
				m.Wants = append(m.Wants, Entry{Cid: dag.Sum(dag.Raw, []byte{byte(i)}), Type: WantHave})
			}
			return AppendMessage(nil, &m, Protocol120)
		}, ErrFlood},
		{"malformed", func(t *testing.T) []byte { return []byte{3, 0x0a, 0x05, 0} }, ErrBadMessage},
		{"oversized", func(t *testing.T) []byte { return []byte{0x81, 0x80, 0x80, 0x02} }, ErrBadMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := mocknet.New()
			s := newServer(t, mem, Config{MaxWantlist: 10}, nil)
			honest := newClient(t, mem, s.h)
			badHost := newHost(t, mem)
			connectHosts(t, badHost, s.h)
			st := rawStream(t, badHost, s.h.ID(), Protocol120)
			if _, err := st.Write(tc.msg(t)); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-s.bad:
				if !errors.Is(err, tc.want) {
					t.Fatalf("cut off for %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("bad peer not cut off")
			}
			// Its stream is reset, and new ones too.
			st.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := st.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Fatalf("bad peer's stream: read %v, want a reset", err)
			}
			st2 := rawStream(t, badHost, s.h.ID(), Protocol120)
			st2.Write(AppendMessage(nil, &Message{Wants: []Entry{{Cid: s.add(honestData)}}}, Protocol120))
			st2.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := st2.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Fatalf("cut-off peer's new stream: read %v, want a reset", err)
			}
			honest.send(s.h.ID(), &Message{Wants: []Entry{{Cid: s.add(honestData)}}})
			if got := honest.waitAnswers(1); len(got) != 1 {
				t.Fatalf("honest peer got %v", got)
			}
		})
	}
}

// A peer that speaks only 1.0.0 gets its blocks as 1.0.0 carries them.
func TestProtocol100(t *testing.T) {
	mem := mocknet.New()
	s := newServer(t, mem, Config{}, nil)
	old := newHost(t, mem)
	got := make(chan []byte, 1)
	old.SetHandler(Protocol100, func(st *p2p.Stream) {
		defer st.Close()
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := readMessage(bufioReader(st), nil)
		if err != nil {
			t.Error(err)
		}
		got <- b
	})
	connectHosts(t, old, s.h)
	data := []byte("a dag-pb node, say")
	v0 := v0Cid(t, data)
	s.store.Set(v0, data)
	st := rawStream(t, old, s.h.ID(), Protocol100)
	defer st.Close()
	if _, err := st.Write(AppendMessage(nil, &Message{Wants: []Entry{{Cid: v0}}}, Protocol100)); err != nil {
		t.Fatal(err)
	}
	var b []byte
	select {
	case b = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	if want := bytesField(fBlocksV0, data); !bytes.Equal(b, want) {
		t.Fatalf("1.0.0 answer %x, want %x", b, want)
	}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// Replies on more streams at once than are read at once all arrive: kubo
// opens a stream per reply and never resends a reply that was reset, so
// while the receiver is slow to take blocks the extra streams wait.
func TestReplyStreamsWait(t *testing.T) {
	mem := mocknet.New()
	sender := newHost(t, mem)
	c := newClient(t, mem, sender)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before c.bs closes
	c.bs.SetReceiver(func(p peer.ID, m *Message) {
		<-release // the node is slow to take blocks
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
		select {
		case c.arrive <- struct{}{}:
		default:
		}
	})
	n := maxReading + 16
	var streams []*p2p.Stream
	for i := range n {
		data := []byte(fmt.Sprintf("reply %d", i))
		m := &Message{Blocks: []Block{{Prefix: dag.Sum(dag.Raw, data).Prefix(), Data: data}}}
		st := rawStream(t, sender, c.h.ID(), Protocol120)
		if _, err := st.Write(AppendMessage(nil, m, Protocol120)); err != nil {
			t.Fatal(err)
		}
		st.CloseWrite()
		streams = append(streams, st)
	}
	ps := newServerView(c).peerState(t, sender.ID())
	waitFor(t, func() bool {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return len(ps.streams) == n
	}, "the receiver does not hold every reply stream")
	once.Do(func() { close(release) })
	if got := c.waitAnswers(n); len(got) != n {
		t.Fatalf("%d replies arrived, want %d", len(got), n)
	}
	for _, st := range streams {
		st.Close()
	}
}

// newServerView looks at a client's Bitswap as server.peerState does.
func newServerView(c *client) *server { return &server{h: c.h, bs: c.bs} }

// TestServes: the wants of a peer that Config.Serves refuses are ignored
// (no block, no presence, nothing kept); a served peer is answered.
func TestServes(t *testing.T) {
	mem := mocknet.New()
	asked := make(chan peer.ID, 16)
	var friend peer.ID
	var friendMu sync.Mutex
	s := newServer(t, mem, Config{Serves: func(p peer.ID) bool {
		asked <- p
		friendMu.Lock()
		defer friendMu.Unlock()
		return p == friend
	}}, nil)
	have := s.add("one")
	missing := dag.Sum(dag.Raw, []byte("no"))
	stranger, fc := newClient(t, mem, s.h), newClient(t, mem, s.h)
	friendMu.Lock()
	friend = fc.h.ID()
	friendMu.Unlock()
	wants := &Message{Wants: []Entry{{Cid: have, Type: WantBlock, SendDontHave: true}, {Cid: missing, Type: WantHave, SendDontHave: true}}}
	stranger.send(s.h.ID(), wants)
	for p := range asked {
		if p == stranger.h.ID() {
			break
		}
	}
	fc.send(s.h.ID(), wants)
	if got := fc.waitAnswers(2); fmt.Sprint(got[have]) != "[block]" {
		t.Fatalf("friend's answers %v", got)
	}
	if got := stranger.answers(); len(got) != 0 {
		t.Fatalf("a refused peer got %v", got)
	}
	if kept := wantsOf(s.peerState(t, stranger.h.ID())); len(kept) != 0 {
		t.Fatalf("a refused peer's wants were kept: %v", kept)
	}
}
