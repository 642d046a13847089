package p2p

import (
	"crypto/tls"
	"net"
	"sync"

	"github.com/share-p2p/share/internal/rawio"
)

// batchConn sits under TLS and cuts the number of system calls, which cost
// more than the copies they save on virtual machines (measured on our
// PVM guest: a syscall is several µs).
//
// Writes: TLS writes each 16 KiB record with its own write(2). While a
// Write of the layer above runs (batchTLS.Write opens a batch), the records
// are gathered in a pooled buffer and go out together, up to batchMax bytes
// per write(2). Outside a batch (the handshake, alerts, key updates sent by
// the reader) writes go straight through.
//
// Reads: TLS reads about one record per read(2). After a read that filled
// the caller's buffer (more is probably waiting in the socket), the next
// read takes up to batchMax bytes into a pooled buffer that is handed back
// as soon as it is drained; a read that did not fill its buffer switches
// back to direct reads, so an idle connection holds no buffer.
type batchConn struct {
	net.Conn

	wmu  sync.Mutex
	hold bool
	wbuf *[]byte

	rbuf *[]byte // read-ahead, nil when drained
	r, w int
	big  bool // the last read filled its buffer: read ahead next time

	// raw: the socket itself, once the handshake is over and nothing sits
	// between it and TLS (see direct)
	raw *rawio.Conn
}

// direct makes the connection read and write the socket c with raw system
// calls (see internal/rawio) from now on, if c has a file descriptor. Call
// it before the layer above can use the connection concurrently, and only
// when c is what Conn reads and writes underneath any wrapping that holds
// no data (the lazy negotiation, once answered).
func (b *batchConn) direct(c net.Conn) {
	b.raw = rawio.NewConn(c)
}

func (b *batchConn) connRead(p []byte) (int, error) {
	if b.raw != nil {
		return b.raw.Read(p)
	}
	return b.Conn.Read(p)
}

func (b *batchConn) connWrite(p []byte) (int, error) {
	if b.raw != nil {
		return b.raw.Write(p)
	}
	return b.Conn.Write(p)
}

// batchMax is the size of a gathered write or a read-ahead.
const batchMax = 256 << 10

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, batchMax+32<<10); return &b }}

func (b *batchConn) Write(p []byte) (int, error) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if !b.hold {
		return b.connWrite(p)
	}
	if b.wbuf == nil {
		b.wbuf = batchPool.Get().(*[]byte)
	}
	*b.wbuf = append(*b.wbuf, p...)
	if len(*b.wbuf) >= batchMax {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (b *batchConn) flushLocked() error {
	if b.wbuf == nil {
		return nil
	}
	_, err := b.connWrite(*b.wbuf)
	*b.wbuf = (*b.wbuf)[:0]
	batchPool.Put(b.wbuf)
	b.wbuf = nil
	return err
}

func (b *batchConn) begin() {
	b.wmu.Lock()
	b.hold = true
	b.wmu.Unlock()
}

func (b *batchConn) end() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.hold = false
	return b.flushLocked()
}

// Read is called by TLS only, never concurrently.
func (b *batchConn) Read(p []byte) (int, error) {
	if b.rbuf != nil {
		n := copy(p, (*b.rbuf)[b.r:b.w])
		b.r += n
		if b.r == b.w {
			batchPool.Put(b.rbuf)
			b.rbuf = nil
		}
		return n, nil
	}
	if !b.big || len(p) >= batchMax {
		n, err := b.connRead(p)
		b.big = n == len(p) && n > 0
		return n, err
	}
	buf := batchPool.Get().(*[]byte)
	n, err := b.connRead((*buf)[:batchMax])
	b.big = n == batchMax
	if n == 0 {
		batchPool.Put(buf)
		return 0, err
	}
	b.rbuf, b.r, b.w = buf, 0, n
	m := copy(p, (*buf)[:n])
	b.r = m
	if b.r == b.w {
		batchPool.Put(b.rbuf)
		b.rbuf = nil
	}
	return m, err
}

// batchTLS is a TLS connection whose every Write is one batch.
type batchTLS struct {
	*tls.Conn
	bc *batchConn
}

func (c batchTLS) Write(p []byte) (int, error) {
	c.bc.begin()
	n, err := c.Conn.Write(p)
	if ferr := c.bc.end(); err == nil && ferr != nil {
		err = ferr
		n = 0
	}
	return n, err
}
