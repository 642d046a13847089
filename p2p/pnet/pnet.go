// Package pnet implements libp2p's pre-shared key private networks
// (pnet/Private-Networks-PSK-V1): every raw connection is wrapped before
// anything else is sent on it, each side sends a random 24-byte nonce, and
// all further bytes are XSalsa20-encrypted with the 256-bit network key and
// the sender's nonce. A node without the key sees noise and fails the
// multistream and TLS handshakes that follow; it learns nothing but the
// nonces.
//
// The layer gives confidentiality against outsiders only: no integrity,
// no authentication of peers. TLS, which runs inside it, provides those.
package pnet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/salsa20/salsa"

	"github.com/share-p2p/share/p2p"
)

// NonceSize is the length of the nonce each side sends first.
const NonceSize = 24

// NonceTimeout bounds the wait for the peer's nonce, in addition to any
// deadline already set on the connection.
const NonceTimeout = 10 * time.Second

// ErrNonceTimeout is returned when the peer's nonce does not arrive within
// NonceTimeout.
var ErrNonceTimeout = errors.New("pnet: timed out waiting for the peer's nonce")

// NewProtector returns a p2p.Protector that wraps connections in the
// private network of psk.
//
// The protector itself never blocks: the own nonce travels in front of the
// first Write (so the layer adds no round trip to the handshake) and the
// peer's nonce is read by the first Read, under the connection's deadline
// and at most NonceTimeout. A peer with another key, or none, therefore
// fails in the handshake that follows, not in the protector.
func NewProtector(psk [32]byte) p2p.Protector {
	return func(c net.Conn) (net.Conn, error) {
		return newConn(c, &psk, NonceTimeout)
	}
}

// Fingerprint returns a short public name of psk (16 lowercase base32
// characters of a domain-separated SHA-256 of the key): it tells networks
// apart, e.g. in logs or LAN discovery, without revealing the key.
func Fingerprint(psk [32]byte) string {
	h := sha256.New()
	h.Write([]byte("share/pnet/fingerprint\x00"))
	h.Write(psk[:])
	return hash32(h.Sum(nil), 16)
}

// DiscoveryName returns the name under which a node of network (the config
// Network) in the private network psk announces itself on the LAN, in
// place of network: nodes of other private networks, or of none, neither
// ask for it nor answer, and the name reveals neither the key nor the
// network name. It is "pnet-" and 16 base32 characters, a valid mdns
// network name.
func DiscoveryName(network string, psk [32]byte) string {
	h := sha256.New()
	h.Write([]byte("share/pnet/discovery\x00"))
	h.Write([]byte(network))
	h.Write([]byte{0})
	h.Write(psk[:])
	return "pnet-" + hash32(h.Sum(nil), 16)
}

func hash32(sum []byte, n int) string {
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum))[:n]
}

// conn is a raw connection inside the private network. Reads and writes
// have independent cipher states, so one reader and one writer may run
// concurrently, as p2p.Conn allows.
type conn struct {
	net.Conn
	psk     *[32]byte
	timeout time.Duration // for the peer's nonce

	rmu  sync.Mutex
	r    stream // keyed by the peer's nonce once read
	rErr error  // sticky: a failed nonce read or a short read of it

	wmu  sync.Mutex
	w    stream // keyed by our nonce
	wErr error  // sticky: after a partial write the streams are out of step
	sent bool   // our nonce has been written
}

func newConn(c net.Conn, psk *[32]byte, timeout time.Duration) (*conn, error) {
	pc := &conn{Conn: c, psk: psk, timeout: timeout}
	var nonce [NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("pnet: nonce: %w", err)
	}
	pc.w.init(psk, &nonce)
	return pc, nil
}

// Read reads and decrypts; the first call reads the peer's nonce first.
func (c *conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rErr != nil {
		return 0, c.rErr
	}
	if !c.r.ready {
		if err := c.readNonce(); err != nil {
			c.rErr = err
			return 0, err
		}
	}
	n, err := c.Conn.Read(p)
	c.r.xor(p[:n], p[:n])
	return n, err
}

func (c *conn) readNonce() error {
	// The timer only ever shortens the deadline, and only when the nonce
	// is late: on success it is stopped before it fires, and a connection
	// whose timer fired is failed rather than used with a past deadline.
	fired := make(chan struct{})
	t := time.AfterFunc(c.timeout, func() {
		c.Conn.SetReadDeadline(time.Unix(1, 0))
		close(fired)
	})
	var nonce [NonceSize]byte
	_, err := io.ReadFull(c.Conn, nonce[:])
	if !t.Stop() {
		<-fired
		return ErrNonceTimeout
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("pnet: connection closed during the nonce: %w", err)
		}
		return err
	}
	c.r.init(c.psk, &nonce)
	return nil
}

// writeChunk bounds the encryption buffer of one Write call.
const writeChunk = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, NonceSize+writeChunk); return &b }}

// Write encrypts and writes p; the first call sends our nonce in front of
// the data, in the same write, so it costs no extra packet.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wErr != nil {
		return 0, c.wErr
	}
	if len(p) == 0 && c.sent {
		return 0, nil
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	total := 0
	for first := true; first || len(p) > 0; first = false {
		out := buf[:0]
		if !c.sent {
			out = append(out, c.w.nonce[:]...)
		}
		n := min(len(p), writeChunk)
		out = out[:len(out)+n]
		c.w.xor(out[len(out)-n:], p[:n])
		if _, err := c.Conn.Write(out); err != nil {
			// Part of out may have gone out: the peer's cipher state is
			// unknown, so the connection cannot be used any more.
			c.wErr = err
			return total, err
		}
		c.sent = true
		total += n
		p = p[n:]
	}
	return total, nil
}

// stream is one direction's XSalsa20 state: the subkey derived from the
// key and the first 16 nonce bytes, the last 8 nonce bytes and the block
// counter, and what is left of the current keystream block.
type stream struct {
	ready   bool
	nonce   [NonceSize]byte
	subkey  [32]byte
	counter [16]byte // nonce[16:24], then the little-endian block counter
	block   uint64
	ks      [64]byte // keystream of block-1 when off < 64
	off     int      // used bytes of ks; 64 means none left
}

func (s *stream) init(key *[32]byte, nonce *[NonceSize]byte) {
	s.nonce = *nonce
	var hn [16]byte
	copy(hn[:], nonce[:16])
	salsa.HSalsa20(&s.subkey, &hn, key, &salsa.Sigma)
	copy(s.counter[:8], nonce[16:])
	s.block = 0
	s.off = 64
	s.ready = true
}

func (s *stream) setCounter() {
	b := s.block
	for i := 8; i < 16; i++ {
		s.counter[i] = byte(b)
		b >>= 8
	}
}

// xor sets dst to src XOR the next len(src) keystream bytes; dst and src
// overlap entirely or not at all.
func (s *stream) xor(dst, src []byte) {
	// Leftover keystream of a partly used block.
	if s.off < 64 && len(src) > 0 {
		n := min(len(src), 64-s.off)
		for i := range n {
			dst[i] = src[i] ^ s.ks[s.off+i]
		}
		s.off += n
		dst, src = dst[n:], src[n:]
	}
	// Whole blocks, in one call to the assembly.
	if full := len(src) &^ 63; full > 0 {
		s.setCounter()
		salsa.XORKeyStream(dst[:full], src[:full], &s.counter, &s.subkey)
		s.block += uint64(full / 64)
		dst, src = dst[full:], src[full:]
	}
	// A partial block: keep the rest of its keystream for the next call.
	if len(src) > 0 {
		s.ks = [64]byte{}
		s.setCounter()
		salsa.XORKeyStream(s.ks[:], s.ks[:], &s.counter, &s.subkey)
		s.block++
		for i := range src {
			dst[i] = src[i] ^ s.ks[i]
		}
		s.off = len(src)
	}
}
