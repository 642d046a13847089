package peer

import (
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// ToCid returns the CIDv1 form of the ID (codec libp2p-key, 0x72). Its
// String is base32 ("bafzaa...").
func (id ID) ToCid() cid.Cid {
	return cid.NewCidV1(cid.Libp2pKey, mh.Multihash(id))
}

// FromCid returns the PeerID carried by a CIDv1 of codec libp2p-key.
func FromCid(c cid.Cid) (ID, error) {
	if !c.Defined() || c.Version() != 1 || c.Type() != cid.Libp2pKey {
		return "", fmt.Errorf("%w: %s is not a libp2p-key CID", ErrInvalidID, c)
	}
	id := ID(c.Hash())
	if err := id.Validate(); err != nil {
		return "", err
	}
	return id, nil
}

// Parse accepts either printed form of a PeerID: base58btc
// ("12D3KooW...") or a libp2p-key CIDv1 in any multibase ("bafz...").
func Parse(s string) (ID, error) {
	if strings.HasPrefix(s, "1") || strings.HasPrefix(s, "Qm") {
		return Decode(s)
	}
	c, err := cid.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrInvalidID, s, err)
	}
	return FromCid(c)
}

// MarshalText implements encoding.TextMarshaler with the base58btc form.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts both forms.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ShortString returns the last six characters of the base58 form, for logs.
func (id ID) ShortString() string {
	s := id.String()
	if len(s) <= 6 {
		return s
	}
	return "*" + s[len(s)-6:]
}
