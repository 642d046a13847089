package autonat

import (
	"bufio"
	"context"
	"errors"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
)

// liar serves dial requests with a fixed answer; dialBack, if set, dials
// the client back first and sends it nonce+nonceDelta.
func liar(t *testing.T, resp Message, dialBack bool, nonceDelta uint64) *p2p.Host {
	t.Helper()
	h := newHost(t, "/ip4/127.0.0.1/tcp/0")
	dialer := newHost(t)
	req, back := Protocols(h.Network())
	h.SetHandler(req, func(st *p2p.Stream) {
		defer st.Close()
		st.SetDeadline(time.Now().Add(10 * time.Second))
		m, err := readMessage(bufio.NewReader(st))
		if err != nil {
			st.Reset()
			return
		}
		if dialBack {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if c, err := dialer.DialAddr(ctx, m.Addrs[0], st.RemotePeer()); err == nil {
				if bs, err := c.NewStream(ctx, back); err == nil {
					p2p.WriteDelimited(bs, AppendDialBack(nil, m.Nonce+nonceDelta))
					bs.SetDeadline(time.Now().Add(5 * time.Second))
					bufio.NewReader(bs).ReadByte()
					bs.Close()
				}
				c.Close()
			}
		}
		p2p.WriteDelimited(st, resp.Append(nil))
	})
	return h
}

var okResponse = Message{Type: DialResponse, Status: StatusOK, DialStatus: DialOK}

func TestLyingServers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		srv      func(t *testing.T) *p2p.Host
		wantOK   bool
		wantErr  error
		anyError bool
	}{
		{"claims a dial back it never made", func(t *testing.T) *p2p.Host { return liar(t, okResponse, false, 0) }, false, ErrNoDialBack, false},
		{"dials back with another nonce", func(t *testing.T) *p2p.Host { return liar(t, okResponse, true, 1) }, false, ErrNoDialBack, false},
		{"says it failed after dialling back", func(t *testing.T) *p2p.Host {
			return liar(t, Message{Type: DialResponse, Status: StatusOK, DialStatus: DialError}, true, 0)
		}, true, nil, false},
		{"answers for another address", func(t *testing.T) *p2p.Host {
			return liar(t, Message{Type: DialResponse, Status: StatusOK, DialStatus: DialOK, AddrIdx: 3}, true, 0)
		}, false, ErrBadResponse, false},
		{"unknown dial status", func(t *testing.T) *p2p.Host {
			return liar(t, Message{Type: DialResponse, Status: StatusOK, DialStatus: 7}, false, 0)
		}, false, ErrBadResponse, false},
		{"unknown response status", func(t *testing.T) *p2p.Host {
			return liar(t, Message{Type: DialResponse, Status: 42}, false, 0)
		}, false, ErrBadResponse, false},
		{"asks for dial data twice", func(t *testing.T) *p2p.Host {
			return liar(t, Message{Type: DialDataRequest, NumBytes: 10}, false, 0)
		}, false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.srv(t)
			h, c := client(t, ClientConfig{})
			connect(t, h, s)
			ok, err := c.Check(ctxT(t), s.ID(), h.ListenAddrs()[0])
			if ok != tc.wantOK || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || (tc.wantErr == nil && !tc.anyError && err != nil) || (tc.anyError && err == nil) {
				t.Fatalf("Check = %v, %v", ok, err)
			}
		})
	}
}

// waitStatus runs the client until cond holds of its status.
func waitStatus(t *testing.T, c *Client, cond func(Status) bool) Status {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := c.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status stays %+v", st)
		}
		c.Kick()
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConfirmationsAndOneLiar: three honest servers confirm the client's
// address; a fourth that lies (says every dial failed) changes nothing.
// With only two honest servers, nothing is concluded.
func TestConfirmationsAndOneLiar(t *testing.T) {
	h, c := client(t, ClientConfig{Confirmations: 3, Interval: time.Hour})
	fail := liar(t, Message{Type: DialResponse, Status: StatusOK, DialStatus: DialError}, false, 0)
	connect(t, h, fail)
	for i := 0; i < 2; i++ {
		s, _ := server(t, ServerConfig{})
		connect(t, h, s)
	}
	// Two honest servers and a liar: no conclusion however long it runs.
	waitStatus(t, c, func(Status) bool { return c.answered(h.ListenAddrs()[0]) == 3 })
	if st := c.Status(); st.Reachability != Unknown {
		t.Fatalf("with 2 of 3 confirmations: %+v", st)
	}
	s, _ := server(t, ServerConfig{})
	connect(t, h, s)
	st := waitStatus(t, c, func(st Status) bool { return st.Reachability != Unknown })
	if st.Reachability != Public || len(st.Reachable) != 1 || !st.Reachable[0].Equal(h.ListenAddrs()[0]) {
		t.Fatalf("status %+v", st)
	}
	if !c.PubliclyReachable() {
		t.Fatal("PubliclyReachable is false")
	}
}

// TestPrivateConclusion: servers that cannot reach the address make it
// unreachable and the node private.
func TestPrivateConclusion(t *testing.T) {
	h, c := client(t, ClientConfig{Confirmations: 2, Interval: time.Hour})
	for i := 0; i < 2; i++ {
		s := liar(t, Message{Type: DialResponse, Status: StatusOK, DialStatus: DialError}, false, 0)
		connect(t, h, s)
	}
	st := waitStatus(t, c, func(st Status) bool { return st.Reachability != Unknown })
	if st.Reachability != Private || len(st.Unreachable) != 1 || c.PubliclyReachable() {
		t.Fatalf("status %+v", st)
	}
}

// answered is how many servers answered about a.
func (c *Client) answered(a ma.Multiaddr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.addrs[string(a.Bytes())]; t != nil {
		return len(t.answers)
	}
	return 0
}
