package p2p

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/share-p2p/share/p2p/mocknet"
	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/sec"
)

// logCapture records log lines so tests can check that a refusal says why.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

func rawDial(t *testing.T, h *Host) net.Conn {
	t.Helper()
	c, err := manet.Dial(h.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports how long the host took to close c (reads until EOF
// or error), failing after max.
func closedWithin(t *testing.T, c net.Conn, max time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(max))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("host kept the connection open for %v", max)
	}
	return time.Since(start)
}

func TestBadHandshakes(t *testing.T) {
	const timeout = 400 * time.Millisecond
	logs := &logCapture{}
	h := newTestHost(t, Config{
		HandshakeTimeout: timeout,
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	setEcho(h)
	header := mss.AppendMessage(nil, mss.ProtocolID)
	tlsProposal := mss.AppendMessage(append([]byte(nil), header...), sec.ProtocolID)
	for _, tc := range []struct {
		name  string
		send  []byte
		stall bool   // the host must wait for its deadline
		log   string // expected in the log
	}{
		{"garbage", bytes.Repeat([]byte("G"), 300), false, "malformed multistream message"},
		{"http request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat("x", 200)), false, "inbound handshake failed"},
		{"oversized line", append(append([]byte(nil), header...), append([]byte{0xd0, 0x0f}, bytes.Repeat([]byte("a"), 3000)...)...), false, "multistream message too large"},
		{"unknown security", mss.AppendMessage(append([]byte(nil), header...), "/noise"), true, ""},
		{"garbage instead of TLS", append(append([]byte(nil), tlsProposal...), bytes.Repeat([]byte{0x16, 0x03, 0x01, 0xff}, 100)...), false, "security handshake"},
		{"silence", nil, true, "i/o timeout"},
		{"half a header", header[:5], true, ""},
		{"half a ClientHello", append(append([]byte(nil), tlsProposal...), 0x16, 0x03, 0x01, 0x02, 0x00, 0x01), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, h)
			c.Write(tc.send)
			took := closedWithin(t, c, 10*timeout)
			if !tc.stall && took >= timeout {
				t.Errorf("closed after %v: waited for the deadline instead of refusing", took)
			}
			if tc.log != "" {
				waitFor(t, 5*time.Second, "log line "+tc.log, func() bool { return logs.contains(tc.log) })
			}
		})
	}
	// The host still works.
	b := newTestHost(t, Config{})
	connect(t, b, h)
	echoRoundTrip(t, b, h.ID(), 100)
}

// TestPlainTLSRefused dials with an ordinary TLS certificate (no libp2p
// extension).
func TestPlainTLSRefused(t *testing.T) {
	h := newTestHost(t, Config{})
	c := rawDial(t, h)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	lz, _ := mss.SelectLazy(c, sec.ProtocolID)
	cert := selfSignedEd25519(t)
	tc := tls.Client(wrappedConn{Conn: c, rw: lz}, &tls.Config{
		InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{sec.ALPN},
		Certificates: []tls.Certificate{cert},
	})
	err := tc.Handshake()
	if err == nil {
		// TLS 1.3 clients finish first; the server's refusal arrives next.
		_, err = tc.Read(make([]byte, 1))
	}
	if err == nil {
		t.Fatal("host accepted a certificate without the libp2p extension")
	}
}

func TestStreamFlood(t *testing.T) {
	mem := mocknet.New()
	h := newTestHost(t, Config{Transport: mem, NegotiationTimeout: 300 * time.Millisecond, Limits: Limits{MaxStreamsPerPeer: 16}})
	setEcho(h)
	bad := newTestHost(t, Config{Transport: mem})
	connect(t, bad, h)
	waitFor(t, 5*time.Second, "the listener to register the connection", func() bool { return h.Connected(bad.ID()) })
	c := bad.Conn(h.ID())
	// Open streams that never negotiate, far beyond the limit.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var streams []*Stream
	for i := 0; i < 200; i++ {
		ys, err := c.sess.OpenStream(ctx)
		if err != nil {
			break
		}
		ys.Write([]byte{0x01}) // a SYN with a byte of a header that never completes
		streams = append(streams, &Stream{ys: ys, conn: c})
	}
	hc := h.Conn(bad.ID())
	if hc == nil {
		t.Fatal("the flood closed the connection")
	}
	// The host takes streams up to the limit, resets the rest, and resets
	// the stalled negotiations at their deadline.
	waitFor(t, 10*time.Second, "the flood to reach the limit", func() bool { return hc.inStreams.Load() == 16 })
	// A negative check: no event says that a 17th stream will never be
	// served, so the count is sampled for a bounded while (about 20 ms,
	// well inside the 300 ms negotiation deadline); the sleeps pace the
	// samples, they wait for nothing.
	for i := 0; i < 20; i++ {
		if n := int(hc.inStreams.Load()); n > 16 {
			t.Fatalf("%d inbound streams served, limit 16", n)
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, 10*time.Second, "stalled streams to be reset", func() bool { return hc.inStreams.Load() == 0 })
	for _, s := range streams {
		s.ys.Reset()
	}
	waitFor(t, 10*time.Second, "the streams to be gone", func() bool { return hc.sess.NumStreams() == 0 })
	echoRoundTrip(t, bad, h.ID(), 1000)

	// An oversized line on a stream ends that stream only.
	ys, err := c.sess.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ys.SetDeadline(time.Now().Add(5 * time.Second))
	ys.Write(append(mss.AppendMessage(nil, mss.ProtocolID), append([]byte{0xd0, 0x0f}, bytes.Repeat([]byte("a"), 2000)...)...))
	io.Copy(io.Discard, ys) // returns once the host ends the stream (reset or EOF)
	if c.IsClosed() {
		t.Fatal("an oversized line closed the connection")
	}
	echoRoundTrip(t, bad, h.ID(), 1000)
}
