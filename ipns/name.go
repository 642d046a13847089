package ipns

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"

	"github.com/share-p2p/share/p2p/peer"
)

// Namespace is the prefix of IPNS paths and routing keys.
const Namespace = "/ipns/"

// ErrBadName is wrapped by ParseName's errors.
var ErrBadName = errors.New("invalid IPNS name")

// Name returns the printed form of id's name, as kubo prints it: the
// CIDv1 of codec libp2p-key in base36 ("k51qzi5uqu5d...").
func Name(id peer.ID) string {
	s, err := id.ToCid().StringOfBase(multibase.Base36)
	if err != nil {
		// Base36 is always known to go-multibase.
		panic(err)
	}
	return s
}

// ParseName parses a name in any form kubo accepts for a key: the base36
// or base32 libp2p-key CID ("k51...", "bafz...") or the base58 PeerID
// ("12D3KooW..."), with or without the /ipns/ prefix. DNSLink names
// (domains) are not names of keys and are refused.
func ParseName(s string) (peer.ID, error) {
	s = strings.TrimPrefix(s, Namespace)
	if strings.Contains(s, ".") {
		return "", fmt.Errorf("%w %q: DNSLink names are not supported", ErrBadName, s)
	}
	if strings.HasPrefix(s, "1") || strings.HasPrefix(s, "Qm") {
		id, err := peer.Decode(s)
		if err != nil {
			return "", fmt.Errorf("%w %q: %v", ErrBadName, s, err)
		}
		return id, nil
	}
	c, err := cid.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadName, s, err)
	}
	id, err := peer.FromCid(c)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadName, s, err)
	}
	return id, nil
}

// RoutingKey is the DHT key of id's records: "/ipns/" and the bytes of
// the PeerID's multihash.
func RoutingKey(id peer.ID) []byte {
	return append([]byte(Namespace), id...)
}

// ParseRoutingKey returns the name a routing key is of.
func ParseRoutingKey(key []byte) (peer.ID, error) {
	rest, ok := bytes.CutPrefix(key, []byte(Namespace))
	if !ok {
		return "", fmt.Errorf("%w: key not in %s", ErrBadName, Namespace)
	}
	id := peer.ID(rest)
	if err := id.Validate(); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadName, err)
	}
	return id, nil
}

// Validator checks the records of the DHT's /ipns/ namespace; its
// methods are those the DHT asks of a validator. The zero value uses the
// clock.
type Validator struct {
	// Now returns the time records are checked at (default time.Now).
	Now func() time.Time
}

func (v Validator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Validate checks that value is a valid record of the name key is the
// routing key of.
func (v Validator) Validate(key, value []byte) error {
	_, err := v.Decode(key, value)
	return err
}

// Decode decodes and validates a record of the name of a routing key.
func (v Validator) Decode(key, value []byte) (*Record, error) {
	id, err := ParseRoutingKey(key)
	if err != nil {
		return nil, err
	}
	r, err := Unmarshal(value)
	if err != nil {
		return nil, err
	}
	if err := Validate(id, r, v.now()); err != nil {
		return nil, err
	}
	return r, nil
}

// Compare orders two encoded records of one name as the Compare of
// records, with the bytes as the tie-break, so that every node picks the
// same of two records. A record that does not decode is worse than one
// that does.
func (v Validator) Compare(a, b []byte) int {
	ra, errA := Unmarshal(a)
	rb, errB := Unmarshal(b)
	switch {
	case errA != nil && errB != nil:
		return 0
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	if c := Compare(ra, rb); c != 0 {
		return c
	}
	return bytes.Compare(a, b)
}
