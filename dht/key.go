package dht

import (
	"bytes"
	"crypto/sha256"
	"math/bits"
)

// Key is a point in the 256-bit Kademlia keyspace: the SHA-256 of a peer
// ID's bytes or of a content key's (multihash) bytes.
type Key [32]byte

// KeyOf returns the keyspace point of b.
func KeyOf(b []byte) Key { return sha256.Sum256(b) }

// Xor returns the XOR distance between a and b.
func (a Key) Xor(b Key) Key {
	var d Key
	for i := range a {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// Cmp compares two keys (or distances) as big-endian integers.
func (a Key) Cmp(b Key) int { return bytes.Compare(a[:], b[:]) }

// CommonPrefixLen returns the number of leading bits a and b share (256
// when they are equal).
func (a Key) CommonPrefixLen(b Key) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 256
}

// add returns a+b, saturating at the largest key: sums of distances are
// only compared, so overflow need not wrap.
func (a Key) add(b Key) Key {
	var s Key
	var carry uint16
	for i := len(a) - 1; i >= 0; i-- {
		v := uint16(a[i]) + uint16(b[i]) + carry
		s[i] = byte(v)
		carry = v >> 8
	}
	if carry != 0 {
		for i := range s {
			s[i] = 0xff
		}
	}
	return s
}

// closer reports whether a is closer to target than b.
func closer(target, a, b Key) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}
