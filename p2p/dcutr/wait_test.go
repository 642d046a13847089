package dcutr

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/relay"
)

const sinkProto = "/test/sink/1.0.0"

// newStream opens a sink stream from a to b in the background; the result
// arrives on the channel.
func newStream(t *testing.T, a, b node) <-chan streamResult {
	t.Helper()
	b.SetHandler(sinkProto, func(s *p2p.Stream) { io.Copy(io.Discard, s); s.Close() })
	out := make(chan streamResult, 1)
	go func() {
		st, err := a.NewStream(testCtx(t), b.ID(), sinkProto)
		out <- streamResult{st, err}
	}()
	return out
}

type streamResult struct {
	st  *p2p.Stream
	err error
}

// wantLimited waits up to d for res to be a stream refused for a limited
// connection.
func wantLimited(t *testing.T, res <-chan streamResult, d time.Duration) {
	t.Helper()
	select {
	case r := <-res:
		if !errors.Is(r.err, p2p.ErrLimitedConn) || !errs.Is(errs.Unreachable, r.err) {
			t.Fatalf("stream over a limited connection: %v (kind %v), want ErrLimitedConn of kind unreachable", r.err, errs.KindOf(r.err))
		}
	case <-time.After(d):
		t.Fatalf("the stream still waits after %v", d)
	}
}

// TestStreamWaitsForPunch: a stream to a peer reached through a limited
// relay waits for the hole punch and opens on the direct connection.
func TestStreamWaitsForPunch(t *testing.T) {
	r, a, b := newNode(t), newNode(t), newNode(t)
	a.punching(t)
	b.punching(t)
	rc := relayedWith(t, relay.DefaultLimits(), r, a, b)
	if !rc.Limited() {
		t.Fatal("a circuit of a relay with default limits is not limited")
	}
	res := <-newStream(t, a, b)
	if res.err != nil {
		t.Fatalf("stream: %v", res.err)
	}
	defer res.st.Close()
	if res.st.Conn().Relayed() {
		t.Fatal("the stream opened on the limited relayed connection")
	}
}

// TestStreamLimitedNoPunch: when no punch can run (no public address on
// either side, or a peer that does not speak DCUtR), a stream over a
// limited connection fails at once; a ping, which opts in, goes through.
func TestStreamLimitedNoPunch(t *testing.T) {
	publicOnly := func(t *testing.T, n node) {
		s := New(n.Host, Config{OnOutcome: n.out.add}) // default Allow: public only
		t.Cleanup(s.Close)
	}
	for _, tc := range []struct {
		name string
		a, b func(*testing.T, node)
	}{
		{"no public address", publicOnly, publicOnly},
		{"no DCUtR", func(t *testing.T, n node) { n.punching(t) }, func(*testing.T, node) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, a, b := newNode(t), newNode(t), newNode(t)
			tc.a(t, a)
			tc.b(t, b)
			relayedWith(t, relay.DefaultLimits(), r, a, b)
			wantLimited(t, newStream(t, a, b), 2*time.Second)
			if _, err := a.Ping(testCtx(t), b.ID()); err != nil {
				t.Fatalf("ping over the limited connection: %v", err)
			}
			if _, err := a.Host.NewStream(p2p.WithLimitedConn(testCtx(t)), b.ID(), sinkProto); err != nil {
				t.Fatalf("a stream that opts in: %v", err)
			}
		})
	}
}

// TestStreamLimitedAfterFailedPunch: the initiator's three attempts fail
// (b, by hand, offers an address nobody listens on); a's stream waits
// through them and fails after the third, not after the first.
func TestStreamLimitedAfterFailedPunch(t *testing.T) {
	r, a, b := newNode(t), newNode(t), newNode(t)
	s := New(a.Host, Config{Allow: loopback, OnOutcome: a.out.add, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(s.Close)
	b.SetHandler(Protocol, func(st *p2p.Stream) { st.Reset() }) // identify lists it; b punches by hand
	relayedWith(t, relay.DefaultLimits(), r, a, b)
	bc := b.Conn(a.ID())
	dead := closedPort(t)
	res := newStream(t, a, b)
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		select {
		case r := <-res:
			t.Fatalf("before attempt %d the stream ended: %v", attempt, r.err)
		default:
		}
		st, err := bc.NewStream(testCtx(t), Protocol)
		if err != nil {
			t.Fatal(err)
		}
		st.SetDeadline(time.Now().Add(5 * time.Second))
		if err := writeMsg(st, &Msg{Type: Connect, Addrs: []ma.Multiaddr{dead}}); err != nil {
			t.Fatal(err)
		}
		if _, err := readMsg(bufio.NewReader(st), Connect); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		writeMsg(st, &Msg{Type: Sync})
		st.Close()
		waitFor(t, "a's failed attempt", func() bool {
			return countOf(a.out.list(), "receiver:failed") == attempt
		})
	}
	wantLimited(t, res, 2*time.Second)
}

// closedPort is a loopback TCP address nobody listens on.
func closedPort(t *testing.T) ma.Multiaddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	return ma.StringCast("/ip4/127.0.0.1/tcp/" + strconv.Itoa(addr.Port))
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
