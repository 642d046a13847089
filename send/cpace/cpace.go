// Package cpace is the CPace balanced PAKE (draft-irtf-cfrg-cpace,
// suite CPACE-RISTR255-SHA512) in its initiator-responder form, with key
// confirmation: two parties who share a low-entropy secret (PRS) derive a
// strong shared key, and a party that does not know the secret learns
// nothing from a run but whether its one guess was right.
//
// The channel identifier CI binds a run to the parties (share puts both
// PeerIDs in it), so that a run cannot be relayed between other peers.
package cpace

import (
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"io"

	"github.com/gtank/ristretto255"
)

// dsi is the domain separator of the ristretto255 group; sInBytes the
// input block size of SHA-512, which the generator string pads to.
const (
	dsi      = "CPaceRistretto255"
	sInBytes = 128
	// PointSize is the size of an encoded group element.
	PointSize = 32
	// MACSize is the size of a key-confirmation tag.
	MACSize = 32
)

// ErrBadMessage is a protocol message that does not parse or carries a
// point that is not a valid one (the identity, a bad encoding).
var ErrBadMessage = errors.New("cpace: bad message")

// ErrMismatch is a key-confirmation tag that does not match: the other
// party used another secret (or is not the one the channel names).
var ErrMismatch = errors.New("cpace: key confirmation failed")

// Params are the public and secret inputs both parties share.
type Params struct {
	PRS []byte // the password-related string
	CI  []byte // the channel identifier
	SID []byte // the session identifier
}

// Initiator is party A's state between its message and B's answer.
type Initiator struct {
	p    Params
	y    *ristretto255.Scalar
	msgA []byte
}

// Start begins a run as the initiator: it returns A's state and MSGa,
// which carries ad (associated data, sent in the clear).
func Start(p Params, ad []byte, rand io.Reader) (*Initiator, []byte, error) {
	y, err := sampleScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	return startWith(p, ad, y, generator(p))
}

func startWith(p Params, ad []byte, y *ristretto255.Scalar, g *ristretto255.Element) (*Initiator, []byte, error) {
	ya := ristretto255.NewElement().ScalarMult(y, g)
	msgA := prefixFreeCat(ya.Encode(nil), ad)
	return &Initiator{p: p, y: y, msgA: msgA}, msgA, nil
}

// Keys are what a completed run gives: the intermediate session key and
// the key-confirmation tags of both sides.
type Keys struct {
	ISK    []byte // 64 bytes
	TagA   []byte // what A sends to prove it holds ISK
	TagB   []byte // what B sends
	PeerAD []byte // the other party's associated data
}

// Finish ends A's run on MSGb; A then checks B's tag with CheckTag.
func (a *Initiator) Finish(msgB []byte) (Keys, error) {
	yb, adB, err := parseMsg(msgB)
	if err != nil {
		return Keys{}, err
	}
	k, err := scalarMultVfy(a.y, yb)
	if err != nil {
		return Keys{}, err
	}
	keys := deriveKeys(a.p, k, a.msgA, msgB)
	keys.PeerAD = adB
	return keys, nil
}

// ParseAD returns the associated data of MSGa (the responder reads it to
// choose the secret) without checking anything else.
func ParseAD(msgA []byte) ([]byte, error) {
	_, ad, err := parseMsg(msgA)
	return ad, err
}

// Respond runs B's side on MSGa: it returns MSGb, carrying ad, and the
// keys.
func Respond(p Params, msgA, ad []byte, rand io.Reader) ([]byte, Keys, error) {
	y, err := sampleScalar(rand)
	if err != nil {
		return nil, Keys{}, err
	}
	return respondWith(p, msgA, ad, y, generator(p))
}

func respondWith(p Params, msgA, ad []byte, y *ristretto255.Scalar, g *ristretto255.Element) ([]byte, Keys, error) {
	ya, adA, err := parseMsg(msgA)
	if err != nil {
		return nil, Keys{}, err
	}
	yb := ristretto255.NewElement().ScalarMult(y, g)
	msgB := prefixFreeCat(yb.Encode(nil), ad)
	k, err := scalarMultVfy(y, ya)
	if err != nil {
		return nil, Keys{}, err
	}
	keys := deriveKeys(p, k, msgA, msgB)
	keys.PeerAD = adA
	return msgB, keys, nil
}

// CheckTag compares a received tag with the expected one in constant
// time.
func CheckTag(got, want []byte) error {
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// deriveKeys computes ISK = H(prefix_free_cat(DSI||"_ISK", sid, K) ||
// MSGa || MSGb) and the confirmation tags: Ta = MAC(Ka, MSGb), Tb =
// MAC(Kb, MSGa), with Ka||Kb = H("CPaceMac" || ISK), as the draft's key
// confirmation does.
func deriveKeys(p Params, k, msgA, msgB []byte) Keys {
	h := sha512.New()
	h.Write(prefixFreeCat([]byte(dsi+"_ISK"), p.SID, k))
	h.Write(msgA)
	h.Write(msgB)
	isk := h.Sum(nil)
	mk := sha512.Sum512(append([]byte("CPaceMac"), isk...))
	return Keys{ISK: isk, TagA: mac(mk[:32], msgB), TagB: mac(mk[32:], msgA)}
}

func mac(key, msg []byte) []byte {
	m := hmac.New(sha512.New, key)
	m.Write(msg)
	return m.Sum(nil)[:MACSize]
}

// generator is calculate_generator: the hash of the generator string
// mapped to the group.
func generator(p Params) *ristretto255.Element {
	h := sha512.Sum512(generatorString(p))
	return ristretto255.NewElement().FromUniformBytes(h[:])
}

// generatorString is prefix_free_cat(DSI, PRS, zero padding, CI, sid),
// the padding filling the hash's first block.
func generatorString(p Params) []byte {
	zpad := max(0, sInBytes-len(prependLen(p.PRS))-len(prependLen([]byte(dsi)))-1)
	return prefixFreeCat([]byte(dsi), p.PRS, make([]byte, zpad), p.CI, p.SID)
}

// sampleScalar draws a uniform scalar.
func sampleScalar(rand io.Reader) (*ristretto255.Scalar, error) {
	var b [64]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, err
	}
	return ristretto255.NewScalar().FromUniformBytes(b[:]), nil
}

// scalarMultVfy is scalar_mult_vfy: y times the decoded point, an error
// where the point does not decode or the result is the identity.
func scalarMultVfy(y *ristretto255.Scalar, enc []byte) ([]byte, error) {
	e := ristretto255.NewElement()
	if err := e.Decode(enc); err != nil {
		return nil, ErrBadMessage
	}
	k := ristretto255.NewElement().ScalarMult(y, e)
	if k.Equal(ristretto255.NewElement()) == 1 {
		return nil, ErrBadMessage
	}
	return k.Encode(nil), nil
}

// parseMsg splits MSG = prefix_free_cat(Y, AD), which must be exactly
// that.
func parseMsg(msg []byte) (y, ad []byte, err error) {
	y, rest, ok := cutLV(msg)
	if !ok || len(y) != PointSize {
		return nil, nil, ErrBadMessage
	}
	ad, rest, ok = cutLV(rest)
	if !ok || len(rest) != 0 {
		return nil, nil, ErrBadMessage
	}
	return y, ad, nil
}

// cutLV reads one length-prefixed field (LEB128 length).
func cutLV(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// prependLen is the field with its LEB128 length before it.
func prependLen(b []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

// prefixFreeCat concatenates the fields, each with its length before it.
func prefixFreeCat(fields ...[]byte) []byte {
	var out []byte
	for _, f := range fields {
		out = binary.AppendUvarint(out, uint64(len(f)))
		out = append(out, f...)
	}
	return out
}
