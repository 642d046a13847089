package p2p

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const sinkProto = "/bench/sink/1.0.0"

func setSink(h *Host, received *atomic.Int64) {
	h.SetHandler(sinkProto, func(s *Stream) {
		s.SetDeadline(time.Now().Add(time.Minute))
		n, _ := io.Copy(io.Discard, s)
		received.Add(n)
		s.Close()
	})
}

// sendStream writes n bytes in chunks of buf to a sink stream and waits
// until the sink has read them all.
func sendStream(b *testing.B, h *Host, to *Host, n int64, buf []byte) {
	s, err := h.NewStream(context.Background(), to.ID(), sinkProto)
	if err != nil {
		b.Error(err)
		return
	}
	s.SetDeadline(time.Now().Add(time.Minute))
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := s.Write(buf[:min(int64(len(buf)), n-sent)]); err != nil {
			b.Error(err)
			return
		}
	}
	s.CloseWrite()
	io.Copy(io.Discard, s) // EOF once the sink closed: it read everything
	s.Close()
}

// BenchmarkStreamThroughput sends b.N MiB over loopback TCP through the whole
// stack on 1 and 8 concurrent streams; compare with BenchmarkRawTLS.
func BenchmarkStreamThroughput(b *testing.B) {
	for _, streams := range []int{1, 8} {
		b.Run(map[int]string{1: "1stream", 8: "8streams"}[streams], func(b *testing.B) {
			a := newTestHost(b, Config{})
			c := newTestHost(b, Config{})
			var received atomic.Int64
			setSink(c, &received)
			connect(b, a, c)
			buf := make([]byte, 1<<20)
			rand.Read(buf)
			b.SetBytes(1 << 20)
			b.ResetTimer()
			total := int64(b.N) << 20
			var wg sync.WaitGroup
			for i := 0; i < streams; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sendStream(b, a, c, total/int64(streams), buf)
				}()
			}
			wg.Wait()
			b.StopTimer()
			if got := received.Load(); got != total/int64(streams)*int64(streams) {
				b.Fatalf("sink received %d bytes, want %d", got, total)
			}
		})
	}
}

func selfSignedEd25519(b testing.TB) tls.Certificate {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	t := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, t, t, pub, priv)
	if err != nil {
		b.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
}

// BenchmarkRawTLS is the ceiling: plain TLS 1.3 over loopback TCP with 1 MiB
// writes, as /work/shared/ceilings/tlscopy.go measures it.
func BenchmarkRawTLS(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, tls.Server(c, &tls.Config{Certificates: []tls.Certificate{selfSignedEd25519(b)}, MinVersion: tls.VersionTLS13}))
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{selfSignedEd25519(b)}})
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	if err := tc.Handshake(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tc.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	tc.Close()
	<-done
}

// BenchmarkConnSetup measures a new connection on loopback TCP: TCP, TLS,
// yamux and a first stream round trip; it reports the median too.
func BenchmarkConnSetup(b *testing.B) {
	a := newTestHost(b, Config{})
	c := newTestHost(b, Config{})
	setEcho(c)
	ai := c.AddrInfo()
	ctx := context.Background()
	one := []byte{1}
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := a.Connect(ctx, ai); err != nil {
			b.Fatal(err)
		}
		s, err := a.NewStream(ctx, c.ID(), echoProto)
		if err != nil {
			b.Fatal(err)
		}
		s.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, one); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(start))
		b.StopTimer()
		s.Close()
		conn := a.Conn(c.ID())
		a.ClosePeer(c.ID())
		<-conn.Done()
		waitFor(b, 5*time.Second, "disconnect", func() bool { return len(a.Peers()) == 0 && len(c.Peers()) == 0 })
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "ms-median")
}

// BenchmarkStreamOpen measures a new stream on an open connection, with
// its optimistic negotiation, up to the first echoed byte.
func BenchmarkStreamOpen(b *testing.B) {
	a := newTestHost(b, Config{})
	c := newTestHost(b, Config{})
	setEcho(c)
	connect(b, a, c)
	ctx := context.Background()
	one := []byte{1}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := a.NewStream(ctx, c.ID(), echoProto)
		if err != nil {
			b.Fatal(err)
		}
		s.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, one); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
