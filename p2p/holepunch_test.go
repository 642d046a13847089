package p2p

import (
	"context"
	"testing"
	"time"
)

// TestHolePunchListenerAccepts: the initiator of a punch dials in the
// listener's part and its SYN reaches the receiver's listener before the
// receiver dials (no NAT on the path, a loaded receiver). The receiver
// expects the punch (ExpectHolePunch), so its host takes the client's part
// and the connection opens; without the expectation both sides would take
// the listener's and the handshake would time out.
func TestHolePunchListenerAccepts(t *testing.T) {
	for _, expect := range []bool{true, false} {
		hs := 10 * time.Second
		if !expect {
			hs = 300 * time.Millisecond // the handshake that must fail
		}
		recv := newTestHost(t, Config{Transport: &TCP{ReusePort: true}, HandshakeTimeout: hs})
		init := newTestHost(t, Config{Transport: &TCP{ReusePort: true}, HandshakeTimeout: hs})
		if expect {
			done := recv.ExpectHolePunch(init.ID(), init.Addrs())
			defer done()
		}
		ctx, cancel := context.WithTimeout(testCtx(t), 2*hs)
		c, err := init.DialHolePunch(ctx, recv.ID(), recv.Addrs(), false)
		cancel()
		switch {
		case expect && err != nil:
			t.Fatalf("expected punch: %v", err)
		case expect && c.RemotePeer() != recv.ID():
			t.Fatalf("connected to %s, want %s", c.RemotePeer(), recv.ID())
		case !expect && err == nil:
			t.Fatal("both sides in the listener's part connected: the test shows nothing")
		}
		if expect {
			waitFor(t, 5*time.Second, "the receiver's connection", func() bool { return recv.DirectConn(init.ID()) != nil })
		}
	}
}
