// Package peer defines PeerIDs, the identities of share nodes, in the
// libp2p format: the identity multihash of the protobuf-encoded ed25519
// public key, printed in base58btc ("12D3KooW...").
package peer

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/mr-tron/base58"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
)

// KeyTypeEd25519 is the libp2p crypto.pb KeyType of ed25519 keys.
const KeyTypeEd25519 = 1

// ID is a PeerID: the bytes of an identity multihash of a public key.
// The zero value is not a valid ID.
type ID string

var (
	// ErrInvalidID is returned for strings or bytes that are not PeerIDs.
	ErrInvalidID = errors.New("invalid peer ID")
	// ErrInvalidKey is returned for keys that are not well-formed ed25519 keys.
	ErrInvalidKey = errors.New("invalid key")
)

// IDFromPublicKey returns the PeerID of an ed25519 public key.
func IDFromPublicKey(pub ed25519.PublicKey) (ID, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", ErrInvalidKey
	}
	pb := MarshalPublicKey(pub)
	// identity multihash: code 0x00, varint length, digest.
	b := make([]byte, 0, 2+len(pb))
	b = append(b, 0x00, byte(len(pb)))
	b = append(b, pb...)
	return ID(b), nil
}

// MarshalPublicKey returns the libp2p protobuf encoding of pub
// (PublicKey{Type: Ed25519, Data: pub}).
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, KeyTypeEd25519)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, pub)
}

// UnmarshalPublicKey decodes a libp2p protobuf-encoded ed25519 public key.
func UnmarshalPublicKey(b []byte) (ed25519.PublicKey, error) {
	data, err := unmarshalKey(b, ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	return ed25519.PublicKey(data), nil
}

// MarshalPrivateKey returns the libp2p protobuf encoding of priv
// (PrivateKey{Type: Ed25519, Data: 64-byte private key}).
func MarshalPrivateKey(priv ed25519.PrivateKey) []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, KeyTypeEd25519)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, priv)
}

// UnmarshalPrivateKey decodes a libp2p protobuf-encoded ed25519 private key
// and checks that its public half matches its seed.
func UnmarshalPrivateKey(b []byte) (ed25519.PrivateKey, error) {
	data, err := unmarshalKey(b, ed25519.PrivateKeySize)
	if err != nil {
		return nil, err
	}
	priv := ed25519.PrivateKey(data)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.NewKeyFromSeed(priv.Seed()).Public()) {
		return nil, fmt.Errorf("%w: public half does not match seed", ErrInvalidKey)
	}
	return priv, nil
}

// unmarshalKey strictly decodes {1: type, 2: data} and returns a copy of data.
func unmarshalKey(b []byte, size int) ([]byte, error) {
	num, typ, _, kt, n, err := pbwire.Next(b)
	if err != nil || num != 1 || typ != protowire.VarintType {
		return nil, fmt.Errorf("%w: missing key type", ErrInvalidKey)
	}
	if kt != KeyTypeEd25519 {
		return nil, fmt.Errorf("%w: key type %d is not ed25519", ErrInvalidKey, kt)
	}
	b = b[n:]
	num, typ, data, _, n, err := pbwire.Next(b)
	if err != nil || num != 2 || typ != protowire.BytesType {
		return nil, fmt.Errorf("%w: missing key data", ErrInvalidKey)
	}
	if n != len(b) || len(data) != size {
		return nil, fmt.Errorf("%w: bad key data", ErrInvalidKey)
	}
	return append([]byte(nil), data...), nil
}

// Decode parses a base58btc PeerID string ("12D3KooW...").
func Decode(s string) (ID, error) {
	b, err := base58.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrInvalidID, s, err)
	}
	id := ID(b)
	if _, err := id.PublicKey(); err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrInvalidID, s, err)
	}
	return id, nil
}

// String returns the base58btc form of the ID.
func (id ID) String() string { return base58.Encode([]byte(id)) }

// PublicKey extracts the ed25519 public key embedded in the ID.
func (id ID) PublicKey() (ed25519.PublicKey, error) {
	b := []byte(id)
	if len(b) < 2 || b[0] != 0x00 || int(b[1]) != len(b)-2 || b[1] >= 0x80 {
		return nil, fmt.Errorf("%w: not an identity multihash", ErrInvalidID)
	}
	return UnmarshalPublicKey(b[2:])
}

// Validate reports whether id is a well-formed ed25519 PeerID.
func (id ID) Validate() error {
	_, err := id.PublicKey()
	return err
}
