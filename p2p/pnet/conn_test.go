package pnet

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/salsa20"
	"golang.org/x/crypto/salsa20/salsa"
)

func randKey(t testing.TB) *[32]byte {
	t.Helper()
	var k [32]byte
	rand.Read(k[:])
	return &k
}

// TestStreamMatchesXSalsa20 checks that the stateful stream, fed in
// arbitrary pieces, produces exactly the XSalsa20 keystream of
// x/crypto/salsa20 (which restarts at block 0 on every call).
func TestStreamMatchesXSalsa20(t *testing.T) {
	key := randKey(t)
	var nonce [NonceSize]byte
	rand.Read(nonce[:])
	msg := make([]byte, 300_000)
	rand.Read(msg)
	want := make([]byte, len(msg))
	salsa20.XORKeyStream(want, msg, nonce[:], key)

	for seed := range uint64(20) {
		r := mrand.New(mrand.NewPCG(seed, 1))
		var s stream
		s.init(key, &nonce)
		got := make([]byte, len(msg))
		for off := 0; off < len(msg); {
			var n int
			switch r.IntN(4) {
			case 0:
				n = r.IntN(3)
			case 1:
				n = r.IntN(130)
			case 2:
				n = 64 * r.IntN(5)
			default:
				n = r.IntN(40_000)
			}
			n = min(n, len(msg)-off)
			if r.IntN(2) == 0 { // in place, as Read does
				copy(got[off:off+n], msg[off:off+n])
				s.xor(got[off:off+n], got[off:off+n])
			} else {
				s.xor(got[off:off+n], msg[off:off+n])
			}
			off += n
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: keystream differs from XSalsa20", seed)
		}
	}
}

// TestCounterCarry checks the block counter across 2^32 blocks, fed byte
// by byte, against one call of the x/crypto core that counts by itself.
func TestCounterCarry(t *testing.T) {
	key := randKey(t)
	var nonce [NonceSize]byte
	rand.Read(nonce[:])
	var s stream
	s.init(key, &nonce)
	s.block = 1<<32 - 1
	counter := s.counter
	binary.LittleEndian.PutUint64(counter[8:], s.block)
	want := make([]byte, 200)
	salsa.XORKeyStream(want, want, &counter, &s.subkey)
	got := make([]byte, 200)
	for i := range got {
		s.xor(got[i:i+1], got[i:i+1])
	}
	if !bytes.Equal(got, want) || s.block != 1<<32+3 {
		t.Fatalf("keystream across the 2^32 block boundary differs (block %d)", s.block)
	}
}

func pipePair(t testing.TB, ka, kb *[32]byte) (*conn, *conn) {
	t.Helper()
	ra, rb := net.Pipe()
	t.Cleanup(func() { ra.Close(); rb.Close() })
	a, err := newConn(ra, ka, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newConn(rb, kb, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestConnRoundTrip sends data both ways at once, in odd-sized writes and
// reads, and checks the wire carries the nonce then ciphertext.
func TestConnRoundTrip(t *testing.T) {
	key := randKey(t)
	a, b := pipePair(t, key, key)
	msgA := make([]byte, 200_001)
	msgB := make([]byte, 150_007)
	rand.Read(msgA)
	rand.Read(msgB)
	send := func(c *conn, msg []byte, errc chan<- error) {
		r := mrand.New(mrand.NewPCG(uint64(len(msg)), 2))
		for len(msg) > 0 {
			n := min(len(msg), r.IntN(100_000))
			if _, err := c.Write(msg[:n]); err != nil {
				errc <- err
				return
			}
			msg = msg[n:]
		}
		errc <- nil
	}
	errc := make(chan error, 2)
	go send(a, msgA, errc)
	go send(b, msgB, errc)
	gotB := make([]byte, len(msgA))
	gotA := make([]byte, len(msgB))
	readc := make(chan error, 1)
	go func() { _, err := io.ReadFull(a, gotA); readc <- err }()
	if _, err := io.ReadFull(b, gotB); err != nil {
		t.Fatal(err)
	}
	if err := <-readc; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(gotB, msgA) || !bytes.Equal(gotA, msgB) {
		t.Fatal("data corrupted")
	}
}

// TestWireFormat checks what goes on the wire: our nonce, then the
// plaintext XORed with XSalsa20(psk, nonce), across two writes.
func TestWireFormat(t *testing.T) {
	key := randKey(t)
	ra, rb := net.Pipe()
	defer ra.Close()
	defer rb.Close()
	c, err := newConn(ra, key, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("/multistream/1.0.0\n and then some more bytes")
	go func() {
		c.Write(msg[:10])
		c.Write(msg[10:])
	}()
	wire := make([]byte, NonceSize+len(msg))
	if _, err := io.ReadFull(rb, wire); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(msg))
	salsa20.XORKeyStream(want, msg, wire[:NonceSize], key)
	if !bytes.Equal(wire[NonceSize:], want) {
		t.Fatal("ciphertext is not XSalsa20(psk, nonce) of the plaintext")
	}
}

// TestWrongKeyIsNoise checks that another key decrypts to noise.
func TestWrongKeyIsNoise(t *testing.T) {
	a, b := pipePair(t, randKey(t), randKey(t))
	msg := bytes.Repeat([]byte{'/'}, 4096)
	go a.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if same := bytes.Count(got, []byte{'/'}); same > 64 {
		t.Fatalf("%d of %d bytes decrypted right with the wrong key", same, len(msg))
	}
}

// TestNonceTimeout: a peer that connects and stays silent is dropped after
// the nonce timeout, even without a deadline on the connection.
func TestNonceTimeout(t *testing.T) {
	ra, rb := net.Pipe()
	defer ra.Close()
	defer rb.Close()
	c, err := newConn(ra, randKey(t), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Read(make([]byte, 10))
	if !errors.Is(err, ErrNonceTimeout) {
		t.Fatalf("got %v, want ErrNonceTimeout", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v", took)
	}
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, ErrNonceTimeout) {
		t.Fatalf("second read: got %v, want the sticky error", err)
	}
}

// TestShortNonce: a peer that closes inside its nonce gives an error, not a
// connection keyed by a partial nonce.
func TestShortNonce(t *testing.T) {
	ra, rb := net.Pipe()
	defer ra.Close()
	c, err := newConn(ra, randKey(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	go func() { rb.Write(make([]byte, 10)); rb.Close() }()
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want ErrUnexpectedEOF", err)
	}
}

func TestFingerprint(t *testing.T) {
	k1, k2 := randKey(t), randKey(t)
	if Fingerprint(*k1) == Fingerprint(*k2) || len(Fingerprint(*k1)) != 16 {
		t.Fatal("fingerprints")
	}
	n := DiscoveryName("share", *k1)
	if n == DiscoveryName("share", *k2) || n == DiscoveryName("other", *k1) || n != DiscoveryName("share", *k1) {
		t.Fatal("discovery names")
	}
	if len(n) != 21 {
		t.Fatalf("discovery name %q", n)
	}
}

// BenchmarkCipher measures the XSalsa20 keystream alone, in the 16 KiB
// pieces TLS records arrive in.
func BenchmarkCipher(b *testing.B) {
	key := randKey(b)
	var nonce [NonceSize]byte
	var s stream
	s.init(key, &nonce)
	buf := make([]byte, 16<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		s.xor(buf, buf)
	}
}
