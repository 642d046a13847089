package pubsub

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/share-p2p/share/p2p/peer"
)

// signPrefix precedes the message bytes a signature covers
// (libp2p/specs pubsub/README.md, "Message Signing").
const signPrefix = "libp2p-pubsub:"

var (
	// ErrBadSignature: a message's signature does not verify, or a
	// StrictSign field (from, seqno, signature) is missing.
	ErrBadSignature = errors.New("invalid message signature")
	// ErrUnsupportedKey: the author's key is not ed25519, the only kind
	// this node verifies (kubo's default since 0.13).
	ErrUnsupportedKey = errors.New("unsupported author key type")
)

// signedBytes returns the bytes m's signature covers, appended to buf.
func signedBytes(buf []byte, m *Message) []byte {
	buf = append(buf, signPrefix...)
	return m.appendTo(buf, false)
}

// sign sets m's signature with priv, whose peer ID m.From must be. The key
// is left out: an ed25519 peer ID embeds it.
func sign(m *Message, priv ed25519.PrivateKey) {
	m.Signature = ed25519.Sign(priv, signedBytes(make([]byte, 0, len(signPrefix)+m.signedSize()), m))
}

// verify checks that m is signed by its author under StrictSign: from,
// seqno (8 bytes) and signature are all present and the signature
// verifies with the key From embeds (or Key, which must then be From's).
func verify(m *Message, buf []byte) error {
	if m.From == nil || len(m.Seqno) != 8 || m.Signature == nil {
		return fmt.Errorf("%w: from, seqno or signature missing", ErrBadSignature)
	}
	author := peer.ID(m.From)
	pub, err := author.PublicKey()
	if err != nil && m.Key == nil {
		return fmt.Errorf("%w: author %x", ErrUnsupportedKey, m.From)
	}
	if m.Key != nil {
		k, kerr := peer.UnmarshalPublicKey(m.Key)
		if kerr != nil {
			return fmt.Errorf("%w: %v", ErrUnsupportedKey, kerr)
		}
		if id, _ := peer.IDFromPublicKey(k); id != author {
			return fmt.Errorf("%w: key is not the author's", ErrBadSignature)
		}
		pub = k
	}
	if !ed25519.Verify(pub, signedBytes(buf[:0], m), m.Signature) {
		return ErrBadSignature
	}
	return nil
}
