package sec

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

func key(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func ident(t testing.TB) *Identity {
	t.Helper()
	i, err := NewIdentity(key(t))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// runPair runs client and server over a pipe and returns their errors
// and the PeerID the server saw.
func runPair(t *testing.T, client, server *Identity, want peer.ID) (cerr, serr error, seen peer.ID) {
	t.Helper()
	a, b := tcpPair(t)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var tc *tls.Conn
		tc, seen, serr = server.Server(ctx, b)
		if serr == nil {
			// TLS 1.3: the client learns of a rejected certificate only
			// on its first read, so answer something.
			tc.Write([]byte{1})
		} else {
			b.Close()
		}
	}()
	tc, cerr := client.Client(ctx, a, want)
	if cerr == nil {
		var one [1]byte
		if _, err := tc.Read(one[:]); err != nil {
			cerr = err
		}
	} else {
		a.Close()
	}
	<-done
	return cerr, serr, seen
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestHandshake(t *testing.T) {
	client, server := ident(t), ident(t)
	cerr, serr, seen := runPair(t, client, server, server.ID())
	if cerr != nil || serr != nil {
		t.Fatalf("client %v, server %v", cerr, serr)
	}
	if seen != client.ID() {
		t.Fatalf("server saw %s, want %s", seen, client.ID())
	}
}

func TestHandshakeWrongPeer(t *testing.T) {
	client, server, other := ident(t), ident(t), ident(t)
	cerr, _, _ := runPair(t, client, server, other.ID())
	if !errors.Is(cerr, ErrPeerMismatch) {
		t.Fatalf("client error = %v, want ErrPeerMismatch", cerr)
	}
}

// forgedIdentity presents victim's public key in the extension, with a
// signature made by the forger's key.
func forgedIdentity(t *testing.T, victim, forger ed25519.PrivateKey) *Identity {
	t.Helper()
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(certKey.Public())
	ext, err := asn1.Marshal(SignedKey{
		PublicKey: peer.MarshalPublicKey(victim.Public().(ed25519.PublicKey)),
		Signature: ed25519.Sign(forger, append([]byte(signaturePrefix), spki...)),
	})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(7),
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: ExtensionOID, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, certKey.Public(), certKey)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPublicKey(victim.Public().(ed25519.PublicKey))
	return &Identity{priv: forger, id: id, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: certKey}}
}

func TestImpersonationRefused(t *testing.T) {
	victim, forger := key(t), key(t)
	forged := forgedIdentity(t, victim, forger)
	honest := ident(t)

	// A forged server: the client dialling the victim's ID must refuse.
	cerr, _, _ := runPair(t, honest, forged, forged.ID())
	if !errors.Is(cerr, ErrBadCertificate) {
		t.Fatalf("client accepted forged server: %v", cerr)
	}
	// A forged client: the server must refuse.
	_, serr, _ := runPair(t, forged, honest, honest.ID())
	if !errors.Is(serr, ErrBadCertificate) {
		t.Fatalf("server accepted forged client: %v", serr)
	}
}

func TestVerifyChain(t *testing.T) {
	good := ident(t)
	der := good.cert.Certificate[0]
	now := time.Now()
	expired := func() []byte {
		certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(certKey.Public())
		ext, _ := MarshalExtension(key(t), spki)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour),
			ExtraExtensions: []pkix.Extension{{Id: ExtensionOID, Value: ext}}}
		d, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, certKey.Public(), certKey)
		return d
	}()
	critical := func(oid asn1.ObjectIdentifier) []byte {
		certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(certKey.Public())
		ext, _ := MarshalExtension(key(t), spki)
		exts := []pkix.Extension{{Id: ExtensionOID, Value: ext, Critical: true}}
		if !oid.Equal(ExtensionOID) {
			exts = append(exts, pkix.Extension{Id: oid, Value: []byte{5, 0}, Critical: true})
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtraExtensions: exts}
		d, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, certKey.Public(), certKey)
		return d
	}
	noExt := func() []byte {
		certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
		d, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, certKey.Public(), certKey)
		return d
	}()
	tampered := append([]byte(nil), der...)
	tampered[len(tampered)-5] ^= 0xff // breaks the self-signature
	for _, tc := range []struct {
		name  string
		certs [][]byte
		ok    bool
	}{
		{"good", [][]byte{der}, true},
		{"critical libp2p extension", [][]byte{critical(ExtensionOID)}, true},
		{"unknown critical extension", [][]byte{critical(asn1.ObjectIdentifier{1, 2, 3, 4})}, false},
		{"none", nil, false},
		{"two", [][]byte{der, der}, false},
		{"expired", [][]byte{expired}, false},
		{"no extension", [][]byte{noExt}, false},
		{"bad self-signature", [][]byte{tampered}, false},
		{"garbage", [][]byte{[]byte("not a certificate")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := VerifyChain(tc.certs, now)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.name == "good" && id != good.ID() {
				t.Fatalf("id = %s, want %s", id, good.ID())
			}
		})
	}
}

func FuzzVerifyExtension(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	spki := []byte("spki")
	ext, _ := MarshalExtension(priv, spki)
	f.Add(ext, spki)
	f.Add([]byte{0x30, 0x00}, []byte{})
	f.Add([]byte{0x30, 0x06, 0x04, 0x01, 0x00, 0x04, 0x01, 0x00}, spki)
	f.Fuzz(func(t *testing.T, ext, spki []byte) {
		id, err := VerifyExtension(ext, spki)
		if err == nil && id.Validate() != nil {
			t.Fatalf("accepted invalid ID %x", string(id))
		}
	})
}

func FuzzVerifyChain(f *testing.F) {
	i, err := NewIdentity(ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(i.cert.Certificate[0])
	f.Add([]byte{0x30, 0x82, 0x01, 0x00})
	f.Add([]byte{})
	now := time.Now()
	f.Fuzz(func(t *testing.T, der []byte) {
		id, err := VerifyChain([][]byte{der}, now)
		if err == nil && id.Validate() != nil {
			t.Fatalf("accepted invalid ID")
		}
	})
}
