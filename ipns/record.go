package ipns

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
	"github.com/share-p2p/share/p2p/peer"
)

// MaxRecordSize is the largest record, in bytes, that is read or stored
// (the spec's and kubo's limit).
const MaxRecordSize = 10 << 10

// validityEOL is the only validity type: the record is valid until the
// time in Validity.
const validityEOL = 0

// validityFormat is RFC 3339 with nanoseconds, in UTC, as the spec writes
// it.
const validityFormat = time.RFC3339Nano

// The errors of records. Every error of Unmarshal and Validate wraps one.
var (
	ErrInvalid   = errors.New("invalid IPNS record")
	ErrTooBig    = errors.New("IPNS record too big")
	ErrSignature = errors.New("IPNS record signature does not verify")
	ErrExpired   = errors.New("IPNS record expired")
	ErrWrongKey  = errors.New("IPNS record signed by another key than its name's")
)

// Record is an IPNS record: a signed statement by the owner of a key that
// the name of the key points at Value until Validity. The fields are
// those of the signed CBOR data, which is authoritative; Marshal also
// writes them in the protobuf's V1 fields, with a V1 signature, as kubo
// does, for older readers.
type Record struct {
	// Value is the path the name points at ("/ipfs/CID[/...]").
	Value []byte
	// Sequence orders the records of a name: a higher one replaces a
	// lower one.
	Sequence uint64
	// Validity is the end of the record's life.
	Validity time.Time
	// TTL is how long a resolver may cache the record.
	TTL time.Duration

	// Data is the CBOR the V2 signature covers.
	Data []byte
	// SignatureV2 signs "ipns-signature:" followed by Data.
	SignatureV2 []byte
	// PubKey is the protobuf public key, when the name does not embed it
	// (ed25519 names always do, so share never writes it).
	PubKey []byte

	// v1 holds the V1 fields of a decoded record, which must agree
	// with Data when present.
	v1 v1Fields
}

// v1Fields are the protobuf fields of the legacy V1 record.
type v1Fields struct {
	value, validity, signature []byte
	validityType               uint64
	sequence, ttl              uint64
	present                    bool // a V1 value or signature is there
}

// New returns a record of priv's name pointing at value, signed with both
// signatures.
func New(priv ed25519.PrivateKey, value []byte, seq uint64, eol time.Time, ttl time.Duration) (*Record, error) {
	if ttl < 0 {
		return nil, fmt.Errorf("%w: negative TTL", ErrInvalid)
	}
	r := &Record{Value: value, Sequence: seq, Validity: eol.UTC(), TTL: ttl}
	d := &data{
		Value:    value,
		Validity: []byte(r.Validity.Format(validityFormat)),
		Sequence: seq,
		TTL:      uint64(ttl),
	}
	r.Data = appendCBOR(nil, d)
	r.SignatureV2 = ed25519.Sign(priv, sigDataV2(r.Data))
	r.v1 = v1Fields{value: d.Value, validity: d.Validity, sequence: seq, ttl: d.TTL, present: true}
	r.v1.signature = ed25519.Sign(priv, sigDataV1(&r.v1))
	if len(r.Marshal()) > MaxRecordSize {
		return nil, fmt.Errorf("%w: value of %d bytes", ErrTooBig, len(value))
	}
	return r, nil
}

// sigDataV2 is what the V2 signature covers.
func sigDataV2(data []byte) []byte {
	return append([]byte("ipns-signature:"), data...)
}

// sigDataV1 is what the V1 signature covers: value, validity and the
// validity type's name.
func sigDataV1(v *v1Fields) []byte {
	b := append(append([]byte(nil), v.value...), v.validity...)
	return append(b, "EOL"...)
}

// The protobuf field numbers of IpnsEntry.
const (
	fValue        = 1
	fSignatureV1  = 2
	fValidityType = 3
	fValidity     = 4
	fSequence     = 5
	fTTL          = 6
	fPubKey       = 7
	fSignatureV2  = 8
	fData         = 9
)

// Marshal returns the protobuf encoding of r.
func (r *Record) Marshal() []byte {
	var b []byte
	bytesField := func(num protowire.Number, v []byte) {
		if len(v) > 0 {
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendBytes(b, v)
		}
	}
	varintField := func(num protowire.Number, v uint64) {
		b = protowire.AppendTag(b, num, protowire.VarintType)
		b = protowire.AppendVarint(b, v)
	}
	if r.v1.present {
		bytesField(fValue, r.v1.value)
		bytesField(fSignatureV1, r.v1.signature)
		varintField(fValidityType, r.v1.validityType)
		bytesField(fValidity, r.v1.validity)
		varintField(fSequence, r.v1.sequence)
		varintField(fTTL, r.v1.ttl)
	}
	bytesField(fPubKey, r.PubKey)
	bytesField(fSignatureV2, r.SignatureV2)
	bytesField(fData, r.Data)
	return b
}

// Unmarshal decodes a record (it does not validate it: see Validate). A
// record over MaxRecordSize is refused unread. Nothing in the result
// aliases b.
func Unmarshal(b []byte) (*Record, error) {
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooBig, len(b))
	}
	b = bytes.Clone(b)
	r := &Record{}
	for len(b) > 0 {
		num, typ, v, x, n, err := pbwire.Next(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		b = b[n:]
		r.field(num, typ, v, x)
	}
	if err := r.decodeData(); err != nil {
		return nil, err
	}
	return r, nil
}

// field stores one protobuf field (see pbwire.Next). Unknown fields are
// skipped.
func (r *Record) field(num protowire.Number, typ protowire.Type, v []byte, x uint64) {
	switch typ {
	case protowire.VarintType:
		r.varintField(num, x)
	case protowire.BytesType:
		r.bytesField(num, v)
	}
}

func (r *Record) varintField(num protowire.Number, x uint64) {
	switch num {
	case fValidityType:
		r.v1.validityType = x
	case fSequence:
		r.v1.sequence = x
	case fTTL:
		r.v1.ttl = x
	}
}

func (r *Record) bytesField(num protowire.Number, v []byte) {
	switch num {
	case fValue:
		r.v1.value, r.v1.present = v, true
	case fSignatureV1:
		r.v1.signature, r.v1.present = v, true
	case fValidity:
		r.v1.validity = v
	case fPubKey:
		r.PubKey = v
	case fSignatureV2:
		r.SignatureV2 = v
	case fData:
		r.Data = v
	}
}

// decodeData fills r's fields from its CBOR data.
func (r *Record) decodeData() error {
	if len(r.Data) == 0 {
		return fmt.Errorf("%w: no data (a V1-only record)", ErrInvalid)
	}
	d, err := decodeCBOR(r.Data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !d.complete() {
		return fmt.Errorf("%w: data lacks a field", ErrInvalid)
	}
	if d.ValidityType != validityEOL {
		return fmt.Errorf("%w: validity type %d", ErrInvalid, d.ValidityType)
	}
	eol, err := time.Parse(time.RFC3339Nano, string(d.Validity))
	if err != nil {
		return fmt.Errorf("%w: validity %q: %v", ErrInvalid, d.Validity, err)
	}
	if d.TTL > uint64(1<<63-1) {
		return fmt.Errorf("%w: TTL %d", ErrInvalid, d.TTL)
	}
	r.Value, r.Validity, r.Sequence, r.TTL = d.Value, eol, d.Sequence, time.Duration(d.TTL)
	if r.v1.present && !r.v1.matches(d) {
		return fmt.Errorf("%w: V1 fields do not match the signed data", ErrInvalid)
	}
	return nil
}

// matches reports whether the V1 fields say what the data says.
func (v *v1Fields) matches(d *data) bool {
	return bytes.Equal(v.value, d.Value) && bytes.Equal(v.validity, d.Validity) &&
		v.validityType == d.ValidityType && v.sequence == d.Sequence && v.ttl == d.TTL
}

// Validate checks r for the name id at time now: the V2 signature by id's
// key (and a public key in the record, if any, is that key), and the
// validity not passed. Decoding already checked the size, the data and
// that the V1 fields agree with it.
func Validate(id peer.ID, r *Record, now time.Time) error {
	pub, err := id.PublicKey()
	if err != nil {
		return fmt.Errorf("%w: name %s: %v", ErrWrongKey, id, err)
	}
	if len(r.PubKey) > 0 {
		if pk, err := peer.UnmarshalPublicKey(r.PubKey); err != nil || !pk.Equal(pub) {
			return fmt.Errorf("%w: the record's public key is not %s's", ErrWrongKey, id)
		}
	}
	if len(r.SignatureV2) == 0 || !ed25519.Verify(pub, sigDataV2(r.Data), r.SignatureV2) {
		return fmt.Errorf("%w (name %s)", ErrSignature, id)
	}
	if !now.Before(r.Validity) {
		return fmt.Errorf("%w on %s", ErrExpired, r.Validity.Format(time.RFC3339))
	}
	return nil
}

// Compare orders two records of a name: positive when a is better than
// b, negative when worse, zero when neither is. A higher sequence is
// better; of equal sequences, the longer validity.
func Compare(a, b *Record) int {
	switch {
	case a.Sequence != b.Sequence:
		if a.Sequence > b.Sequence {
			return 1
		}
		return -1
	case a.Validity.After(b.Validity):
		return 1
	case a.Validity.Before(b.Validity):
		return -1
	}
	return 0
}
