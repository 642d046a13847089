// Package sec secures connections with TLS 1.3 as the libp2p TLS handshake
// specifies: each side presents a self-signed certificate for a throwaway
// key, carrying in extension 1.3.6.1.4.1.53594.1.1 its ed25519 host key and
// the host key's signature over the certificate key. Authentication is
// mutual, and a dialer's handshake fails unless the remote proves the PeerID
// it dialled.
package sec

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// ProtocolID names this security protocol in multistream-select.
const ProtocolID = "/tls/1.0.0"

// ALPN is the application protocol both sides announce.
const ALPN = "libp2p"

// signaturePrefix is prepended to the SubjectPublicKeyInfo before the host
// key signs it.
const signaturePrefix = "libp2p-tls-handshake:"

// ExtensionOID is the libp2p Public Key Extension.
var ExtensionOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

// certValidity is how long our certificates claim to be valid; they are
// fresh for every Identity, the window only has to cover clock skew.
const certValidity = 100 * 365 * 24 * time.Hour

var (
	// ErrPeerMismatch is returned when the remote proves a PeerID other
	// than the one dialled.
	ErrPeerMismatch = errors.New("remote peer ID mismatch")
	// ErrBadCertificate is returned for certificates that do not follow
	// the libp2p TLS rules.
	ErrBadCertificate = errors.New("bad libp2p certificate")
)

// SignedKey is the ASN.1 payload of the extension. go-libp2p encodes both
// fields as OCTET STRING (the spec text says BIT STRING); we follow the
// implementations so that certificates interoperate.
type SignedKey struct {
	PublicKey []byte // libp2p protobuf-encoded host public key
	Signature []byte
}

// Identity holds a host key and the certificate derived from it.
type Identity struct {
	priv ed25519.PrivateKey
	id   peer.ID
	cert tls.Certificate
}

// NewIdentity creates a certificate for a fresh ECDSA P-256 key, signed into
// the extension by the host key priv.
func NewIdentity(priv ed25519.PrivateKey) (*Identity, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, peer.ErrInvalidKey
	}
	id, err := peer.IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := NewCertificate(priv, certKey)
	if err != nil {
		return nil, err
	}
	return &Identity{priv: priv, id: id, cert: cert}, nil
}

// ID returns the PeerID of the identity.
func (i *Identity) ID() peer.ID { return i.id }

// NewCertificate builds the self-signed certificate for certKey, with the
// extension signed by the host key.
func NewCertificate(host ed25519.PrivateKey, certKey crypto.Signer) (tls.Certificate, error) {
	spki, err := x509.MarshalPKIXPublicKey(certKey.Public())
	if err != nil {
		return tls.Certificate{}, err
	}
	ext, err := MarshalExtension(host, spki)
	if err != nil {
		return tls.Certificate{}, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:    sn,
		Subject:         pkix.Name{SerialNumber: sn.String()},
		NotBefore:       now.Add(-time.Hour),
		NotAfter:        now.Add(certValidity),
		ExtraExtensions: []pkix.Extension{{Id: ExtensionOID, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, certKey.Public(), certKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: certKey}, nil
}

// MarshalExtension returns the DER SignedKey for a certificate whose
// SubjectPublicKeyInfo is spki.
func MarshalExtension(host ed25519.PrivateKey, spki []byte) ([]byte, error) {
	msg := append([]byte(signaturePrefix), spki...)
	return asn1.Marshal(SignedKey{
		PublicKey: peer.MarshalPublicKey(host.Public().(ed25519.PublicKey)),
		Signature: ed25519.Sign(host, msg),
	})
}

// VerifyExtension checks a DER SignedKey against the certificate's
// SubjectPublicKeyInfo and returns the PeerID it proves.
func VerifyExtension(ext, spki []byte) (peer.ID, error) {
	var sk SignedKey
	rest, err := asn1.Unmarshal(ext, &sk)
	if err != nil {
		return "", fmt.Errorf("%w: extension: %v", ErrBadCertificate, err)
	}
	if len(rest) != 0 {
		return "", fmt.Errorf("%w: trailing bytes after extension", ErrBadCertificate)
	}
	pub, err := peer.UnmarshalPublicKey(sk.PublicKey)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	msg := append([]byte(signaturePrefix), spki...)
	if !ed25519.Verify(pub, msg, sk.Signature) {
		return "", fmt.Errorf("%w: extension signature does not verify", ErrBadCertificate)
	}
	return peer.IDFromPublicKey(pub)
}

// VerifyChain applies the libp2p rules to the certificates a peer presented
// and returns its PeerID: exactly one certificate, valid now, correctly
// self-signed, no unknown critical extension, and a valid extension.
func VerifyChain(rawCerts [][]byte, now time.Time) (peer.ID, error) {
	if len(rawCerts) != 1 {
		return "", fmt.Errorf("%w: %d certificates, want 1", ErrBadCertificate, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return "", fmt.Errorf("%w: not valid at %s", ErrBadCertificate, now.UTC().Format(time.RFC3339))
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return "", fmt.Errorf("%w: self-signature: %v", ErrBadCertificate, err)
	}
	for _, oid := range cert.UnhandledCriticalExtensions {
		if !oid.Equal(ExtensionOID) {
			return "", fmt.Errorf("%w: unknown critical extension %s", ErrBadCertificate, oid)
		}
	}
	var ext []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(ExtensionOID) {
			if ext != nil {
				return "", fmt.Errorf("%w: duplicate extension", ErrBadCertificate)
			}
			ext = e.Value
		}
	}
	if ext == nil {
		return "", fmt.Errorf("%w: no libp2p extension", ErrBadCertificate)
	}
	return VerifyExtension(ext, cert.RawSubjectPublicKeyInfo)
}

// config returns a tls.Config for one handshake. The verified remote PeerID
// is stored in *remote; a non-empty want makes any other PeerID fail.
func (i *Identity) config(want peer.ID, remote *peer.ID) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{i.cert},
		ClientAuth:             tls.RequireAnyClientCert,
		InsecureSkipVerify:     true, // VerifyPeerCertificate does the libp2p checks
		NextProtos:             []string{ALPN},
		SessionTicketsDisabled: true, // resumption would skip VerifyPeerCertificate
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			id, err := VerifyChain(rawCerts, time.Now())
			if err != nil {
				return err
			}
			if want != "" && id != want {
				return fmt.Errorf("%w: dialled %s, remote is %s", ErrPeerMismatch, want, id)
			}
			*remote = id
			return nil
		},
	}
}

// Client runs the dialer side of the handshake on conn and fails unless the
// remote proves to be want. The context bounds the handshake.
func (i *Identity) Client(ctx context.Context, conn net.Conn, want peer.ID) (*tls.Conn, error) {
	if want == "" {
		return nil, fmt.Errorf("%w: no peer ID to dial", ErrPeerMismatch)
	}
	var remote peer.ID
	tc := tls.Client(conn, i.config(want, &remote))
	if err := handshake(ctx, tc); err != nil {
		return nil, err
	}
	if remote != want {
		return nil, ErrPeerMismatch
	}
	return tc, nil
}

// Server runs the listener side of the handshake on conn and returns the
// PeerID the remote proved.
func (i *Identity) Server(ctx context.Context, conn net.Conn) (*tls.Conn, peer.ID, error) {
	var remote peer.ID
	tc := tls.Server(conn, i.config("", &remote))
	if err := handshake(ctx, tc); err != nil {
		return nil, "", err
	}
	if remote == "" {
		return nil, "", fmt.Errorf("%w: no client certificate", ErrBadCertificate)
	}
	return tc, remote, nil
}

func handshake(ctx context.Context, tc *tls.Conn) error {
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	st := tc.ConnectionState()
	if st.Version != tls.VersionTLS13 {
		return fmt.Errorf("%w: TLS version %x", ErrBadCertificate, st.Version)
	}
	if st.NegotiatedProtocol != ALPN {
		return fmt.Errorf("tls: ALPN %q, want %q", st.NegotiatedProtocol, ALPN)
	}
	return nil
}
