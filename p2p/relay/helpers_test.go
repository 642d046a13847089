package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/mocknet"
	"github.com/share-p2p/share/p2p/peer"
)

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func testLogger() *slog.Logger {
	if os.Getenv("NET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// node is a test host with its key.
type node struct {
	*p2p.Host
	key ed25519.PrivateKey
}

// newNode starts a host on the in-memory network (or loopback TCP when
// mn is nil) and closes it at the end of the test.
func newNode(t testing.TB, mn *mocknet.Network) node {
	t.Helper()
	key := testKey(t)
	cfg := p2p.Config{Key: key, Logger: testLogger()}
	if mn != nil {
		cfg.Transport = mn
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/memory/0")}
	} else {
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	}
	h, err := p2p.NewHost(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return node{h, key}
}

func newService(t testing.TB, n node, lim Limits) *Service {
	t.Helper()
	s, err := NewService(n.Host, n.key, lim, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t testing.TB, a, b node) {
	t.Helper()
	if err := a.Connect(testCtx(t), b.AddrInfo()); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

// reserved sets up a relay r and a client for target that holds a
// reservation on it, and returns the client.
func reserved(t testing.TB, r, target node) *Client {
	t.Helper()
	c := NewClient(target.Host, testLogger())
	connect(t, target, r)
	if _, err := c.Reserve(testCtx(t), r.ID()); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	return c
}

// circuitTo is the address of target through relay r.
func circuitTo(r node, target peer.ID) peer.AddrInfo {
	return peer.AddrInfo{ID: target, Addrs: []ma.Multiaddr{relayCircuit(r.Addrs()[0], r.ID())}}
}

const echoProto = "/test/echo/1.0.0"

func setEcho(h *p2p.Host) {
	h.SetHandler(echoProto, func(s *p2p.Stream) {
		s.SetDeadline(time.Now().Add(20 * time.Second))
		io.Copy(s, s)
		s.CloseWrite()
	})
}

// echo sends size random bytes to peer's echo handler and reads them back.
func echo(ctx context.Context, from *p2p.Host, to peer.ID, size int) error {
	s, err := from.NewStream(ctx, to, echoProto)
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(20 * time.Second))
	msg := make([]byte, size)
	rand.Read(msg)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(msg)
		if err == nil {
			err = s.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
