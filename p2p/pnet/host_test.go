package pnet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/pnet"
)

const echoProto = "/pnet-test/echo/1.0.0"

// failLog records when a host logs a failed handshake.
type failLog struct {
	mu    sync.Mutex
	fails []time.Time
}

func (l *failLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *failLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *failLog) WithGroup(string) slog.Handler            { return l }
func (l *failLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "handshake failed") {
		l.mu.Lock()
		l.fails = append(l.fails, r.Time)
		l.mu.Unlock()
	}
	return nil
}

func (l *failLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.fails)
}

type testHost struct {
	*p2p.Host
	log     *failLog
	handled atomic.Int64 // echo handler runs
}

// newHost starts a host on loopback TCP, in the private network of psk
// (none if nil).
func newHost(t *testing.T, psk *[32]byte) *testHost {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	th := &testHost{log: &failLog{}}
	cfg := p2p.Config{
		Key:              key,
		ListenAddrs:      []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		Logger:           slog.New(th.log),
		HandshakeTimeout: 3 * time.Second,
	}
	if psk != nil {
		cfg.Protector = pnet.NewProtector(*psk)
	}
	h, err := p2p.NewHost(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	th.Host = h
	h.SetHandler(echoProto, func(s *p2p.Stream) {
		th.handled.Add(1)
		s.SetDeadline(time.Now().Add(20 * time.Second))
		io.Copy(s, s)
		s.CloseWrite()
	})
	return th
}

func newPSK(t *testing.T) *[32]byte {
	t.Helper()
	var k [32]byte
	rand.Read(k[:])
	return &k
}

// echo sends size random bytes to to's echo handler and checks the reply.
func echo(from, to *testHost, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := from.NewStream(ctx, to.ID(), echoProto)
	if err != nil {
		return fmt.Errorf("new stream: %w", err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(20 * time.Second))
	msg := make([]byte, size)
	rand.Read(msg)
	go func() {
		s.Write(msg)
		s.CloseWrite()
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo returned %d bytes, not the %d sent", len(got), len(msg))
	}
	return nil
}

func TestSameKeyConnects(t *testing.T) {
	psk := newPSK(t)
	a, b := newHost(t, psk), newHost(t, psk)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	// b registers the inbound connection a moment after a's Connect returns.
	for !b.Connected(a.ID()) {
		if ctx.Err() != nil {
			t.Fatal("b never saw the connection")
		}
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := echo(a, b, 3<<20); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := echo(b, a, 100_000); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := a.Ping(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
}

// TestOutsidersFail: with different keys, or a key on one side only, the
// dial fails on the dialler and the listener within the handshake timeout,
// no connection is kept and no handler runs.
func TestOutsidersFail(t *testing.T) {
	k1, k2 := newPSK(t), newPSK(t)
	cases := []struct {
		name           string
		dialer, listen *[32]byte
	}{
		{"other key", k1, k2},
		{"dialer without key", nil, k1},
		{"listener without key", k1, nil},
	}
	const attempts = 5 // the garbage differs every time
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newHost(t, tc.dialer), newHost(t, tc.listen)
			var worst time.Duration
			for i := range attempts {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				err := a.Connect(ctx, b.AddrInfo())
				cancel()
				if err == nil {
					t.Fatal("connected across private networks")
				}
				took := time.Since(start)
				// The listener gives up too; wait for its log line.
				for b.log.count() < i+1 {
					if time.Since(start) > 5*time.Second {
						t.Fatalf("attempt %d: listener still in the handshake after %v", i, time.Since(start))
					}
					time.Sleep(5 * time.Millisecond)
				}
				b.log.mu.Lock()
				took = max(took, b.log.fails[i].Sub(start))
				b.log.mu.Unlock()
				worst = max(worst, took)
				if took > 4*time.Second {
					t.Fatalf("attempt %d: failing took %v (handshake timeout 3s)", i, took)
				}
			}
			t.Logf("worst time to fail of %d attempts: %v", attempts, worst)
			if a.log.count() < attempts {
				t.Errorf("dialer logged %d failed handshakes, want %d", a.log.count(), attempts)
			}
			if n := len(a.Conns()) + len(b.Conns()); n != 0 {
				t.Errorf("%d connections kept", n)
			}
			if a.handled.Load()+b.handled.Load() != 0 {
				t.Error("a stream handler ran")
			}
		})
	}
}

// BenchmarkThroughput sends b.N MiB over loopback TCP through the whole
// stack (TLS 1.3, yamux), in the public network and in a private one: the
// difference is the cost of the pnet layer.
func BenchmarkThroughput(b *testing.B) {
	for _, private := range []bool{false, true} {
		name := map[bool]string{false: "public", true: "private"}[private]
		b.Run(name, func(b *testing.B) {
			var psk *[32]byte
			if private {
				var k [32]byte
				psk = &k
			}
			var received atomic.Int64
			a, c := benchHost(b, psk, &received), benchHost(b, psk, &received)
			ctx := context.Background()
			if err := a.Connect(ctx, c.AddrInfo()); err != nil {
				b.Fatal(err)
			}
			s, err := a.NewStream(ctx, c.ID(), echoProto)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			rand.Read(buf)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := s.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			s.CloseWrite()
			io.Copy(io.Discard, s) // EOF once the sink has read everything
			if n := received.Load(); n != int64(b.N)<<20 {
				b.Fatalf("sink received %d bytes, want %d", n, int64(b.N)<<20)
			}
		})
	}
}

// benchHost is a host whose echo handler only sinks data, counting it in
// received, then closes.
func benchHost(b *testing.B, psk *[32]byte, received *atomic.Int64) *p2p.Host {
	b.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	cfg := p2p.Config{Key: key, ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}}
	if psk != nil {
		cfg.Protector = pnet.NewProtector(*psk)
	}
	h, err := p2p.NewHost(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	h.SetHandler(echoProto, func(s *p2p.Stream) {
		n, _ := io.Copy(io.Discard, s)
		received.Add(n)
		s.Close()
	})
	return h
}
