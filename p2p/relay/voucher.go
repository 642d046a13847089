package relay

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/p2p/peer"
)

// The reservation voucher is a signed envelope (libp2p specs RFC 0002,
// signed-envelopes) of payload type /libp2p/relay-rsvp (multicodec 0x0302),
// signed in the domain "libp2p-relay-rsvp".
const voucherDomain = "libp2p-relay-rsvp"

// voucherType is the envelope's payload_type: the multicodec 0x0302 as
// its two big-endian bytes, as go-libp2p (kubo) writes and checks it,
// not as a uvarint (0x82 0x06).
var voucherType = []byte{0x03, 0x02}

// Voucher says that Relay holds a reservation for Peer until Expiration.
type Voucher struct {
	Relay      peer.ID   // 1
	Peer       peer.ID   // 2
	Expiration time.Time // 3, unix seconds
}

// ErrBadVoucher is returned for vouchers that do not decode or verify.
var ErrBadVoucher = errors.New("bad reservation voucher")

func (v *Voucher) marshal() []byte {
	b := appendMsg(nil, 1, []byte(v.Relay))
	b = appendMsg(b, 2, []byte(v.Peer))
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v.Expiration.Unix()))
}

func unmarshalVoucher(b []byte) (*Voucher, error) {
	v := &Voucher{}
	var seen int
	err := fields(b, func(f field) (err error) {
		switch f.num {
		case 1, 2:
			if err = f.want(protowire.BytesType); err != nil {
				return err
			}
			id := peer.ID(f.b)
			if err := id.Validate(); err != nil {
				return fmt.Errorf("%w: %v", ErrBadVoucher, err)
			}
			if f.num == 1 {
				v.Relay = id
			} else {
				v.Peer = id
			}
		case 3:
			if err = f.want(protowire.VarintType); err == nil && f.v > 1<<62 {
				err = fmt.Errorf("%w: expiration %d", ErrBadVoucher, f.v)
			}
			v.Expiration = time.Unix(int64(f.v), 0)
		default:
			return nil
		}
		seen |= 1 << f.num
		return err
	})
	if err == nil && seen != 1<<1|1<<2|1<<3 {
		err = fmt.Errorf("%w: missing fields", ErrBadVoucher)
	}
	return v, err
}

// signedData is what the envelope's signature covers: domain, payload
// type and payload, each with a uvarint length prefix.
func signedData(payload []byte) []byte {
	var b []byte
	for _, part := range [][]byte{[]byte(voucherDomain), voucherType, payload} {
		b = binary.AppendUvarint(b, uint64(len(part)))
		b = append(b, part...)
	}
	return b
}

// SignVoucher returns v in an envelope signed by key, the relay's.
func SignVoucher(key ed25519.PrivateKey, v *Voucher) []byte {
	payload := v.marshal()
	sig := ed25519.Sign(key, signedData(payload))
	b := appendMsg(nil, 1, peer.MarshalPublicKey(key.Public().(ed25519.PublicKey)))
	b = appendMsg(b, 2, voucherType)
	b = appendMsg(b, 3, payload)
	return appendMsg(b, 5, sig)
}

// OpenVoucher checks an envelope's signature and payload type and returns
// the voucher inside, whose Relay is the signer.
func OpenVoucher(env []byte) (*Voucher, error) {
	var pub, typ, payload, sig []byte
	err := fields(env, func(f field) error {
		if f.num < 1 || f.num > 5 || f.num == 4 {
			return nil
		}
		if err := f.want(protowire.BytesType); err != nil {
			return err
		}
		switch f.num {
		case 1:
			pub = f.b
		case 2:
			typ = f.b
		case 3:
			payload = f.b
		case 5:
			sig = f.b
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadVoucher, err)
	}
	if string(typ) != string(voucherType) {
		return nil, fmt.Errorf("%w: payload type %x", ErrBadVoucher, typ)
	}
	key, err := peer.UnmarshalPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadVoucher, err)
	}
	if !ed25519.Verify(key, signedData(payload), sig) {
		return nil, fmt.Errorf("%w: signature does not verify", ErrBadVoucher)
	}
	v, err := unmarshalVoucher(payload)
	if err != nil {
		return nil, err
	}
	if signer, _ := peer.IDFromPublicKey(key); signer != v.Relay {
		return nil, fmt.Errorf("%w: signed by %s, not the relay %s", ErrBadVoucher, signer, v.Relay)
	}
	return v, nil
}
