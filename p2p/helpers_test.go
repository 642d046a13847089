package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

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

var loopback4 = ma.StringCast("/ip4/127.0.0.1/tcp/0")

// newTestHost starts a host on loopback TCP (or cfg's transport) and closes
// it at the end of the test.
func newTestHost(t testing.TB, cfg Config) *Host {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key = testKey(t)
	}
	if cfg.ListenAddrs == nil {
		if _, ok := cfg.Transport.(*mocknet.Network); ok {
			cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/memory/0")}
		} else {
			cfg.ListenAddrs = []ma.Multiaddr{loopback4}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	h, err := NewHost(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t testing.TB, a, b *Host) {
	t.Helper()
	if err := a.Connect(testCtx(t), b.AddrInfo()); err != nil {
		t.Fatalf("connect %s -> %s: %v", a.ID().ShortString(), b.ID().ShortString(), err)
	}
	// The listener registers the connection a moment after the dialler
	// (TLS 1.3 clients finish first).
	waitFor(t, 5*time.Second, "the listener to register the connection", func() bool { return b.Connected(a.ID()) })
}

// echoProto is a test protocol that copies the stream back.
const echoProto = "/test/echo/1.0.0"

func setEcho(h *Host) {
	h.SetHandler(echoProto, func(s *Stream) {
		s.SetDeadline(time.Now().Add(20 * time.Second))
		io.Copy(s, s)
		s.CloseWrite()
	})
}

func echoRoundTrip(t testing.TB, from *Host, to peer.ID, size int) {
	t.Helper()
	s, err := from.NewStream(testCtx(t), to, echoProto)
	if err != nil {
		t.Fatalf("new stream: %v", err)
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
		t.Fatalf("read echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo: got %d bytes, want %d (equal prefix: %v)", len(got), len(msg), bytes.HasPrefix(msg, got))
	}
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

// checkGoroutines waits until the goroutine count is back to base and
// dumps the stacks if it is not.
func checkGoroutines(t testing.TB, base int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			var ours []string
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(g, "share-p2p/share/p2p") || strings.Contains(g, "yamux") {
					ours = append(ours, g)
				}
			}
			t.Fatalf("%d goroutines, want <= %d; ours:\n%s", runtime.NumGoroutine(), base, strings.Join(ours, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
