package p2p

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
)

// countConn counts the reads and writes that reach the socket.
type countConn struct {
	net.Conn
	reads, writes atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestBatchConn sends 8 MiB through TLS over batchConns on loopback TCP
// and checks the bytes arrive intact, in far fewer system calls than TLS
// records.
func TestBatchConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const total = 8 << 20
	data := make([]byte, total)
	rand.Read(data)
	type result struct {
		got   []byte
		reads int64
		err   error
	}
	res := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		cc := &countConn{Conn: c}
		bc := &batchConn{Conn: cc}
		tc := tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{selfSignedEd25519(t)}, MinVersion: tls.VersionTLS13})
		if err := tc.Handshake(); err != nil {
			res <- result{err: err}
			return
		}
		before := cc.reads.Load()
		got := make([]byte, 0, total)
		buf := make([]byte, 100<<10) // odd sizes against the records
		for len(got) < total {
			n, err := tc.Read(buf[:1+len(got)%len(buf)])
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		res <- result{got: got, reads: cc.reads.Load() - before}
		tc.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := &countConn{Conn: c}
	bc := &batchConn{Conn: cc}
	tc := tls.Client(bc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	w := batchTLS{tc, bc}
	before := cc.writes.Load()
	for off := 0; off < total; off += 1 << 20 {
		if _, err := w.Write(data[off : off+1<<20]); err != nil {
			t.Fatal(err)
		}
	}
	writes := cc.writes.Load() - before
	r := <-res
	tc.Close()
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !bytes.Equal(r.got, data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(r.got), total)
	}
	records := int64(total / (16 << 10))
	if writes > records/8 {
		t.Errorf("%d writes for %d records, want at most %d", writes, records, records/8)
	}
	if r.reads >= records {
		t.Errorf("%d reads for %d records, want fewer", r.reads, records)
	}
	t.Logf("%d records: %d writes, %d reads", records, writes, r.reads)
	if bc.wbuf != nil {
		t.Error("write buffer still held after the batch")
	}
}
