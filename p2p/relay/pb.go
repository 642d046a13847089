package relay

import (
	"errors"
	"fmt"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
	"github.com/share-p2p/share/p2p/peer"
)

// Protocol IDs, the same on every network (kubo's relays speak them).
const (
	HopProtocol  = "/libp2p/circuit/relay/0.2.0/hop"
	StopProtocol = "/libp2p/circuit/relay/0.2.0/stop"
)

// Wire limits. MaxMessageSize is go-libp2p's; a message carries at most
// maxAddrs addresses, each at most maxAddrSize bytes.
const (
	MaxMessageSize = 4096
	maxAddrs       = 32
	maxAddrSize    = 512
)

// Status is a circuit v2 status code.
type Status int32

// The status codes of the spec.
const (
	StatusUnused                Status = 0
	StatusOK                    Status = 100
	StatusReservationRefused    Status = 200
	StatusResourceLimitExceeded Status = 201
	StatusPermissionDenied      Status = 202
	StatusConnectionFailed      Status = 203
	StatusNoReservation         Status = 204
	StatusMalformedMessage      Status = 400
	StatusUnexpectedMessage     Status = 401
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusReservationRefused:
		return "RESERVATION_REFUSED"
	case StatusResourceLimitExceeded:
		return "RESOURCE_LIMIT_EXCEEDED"
	case StatusPermissionDenied:
		return "PERMISSION_DENIED"
	case StatusConnectionFailed:
		return "CONNECTION_FAILED"
	case StatusNoReservation:
		return "NO_RESERVATION"
	case StatusMalformedMessage:
		return "MALFORMED_MESSAGE"
	case StatusUnexpectedMessage:
		return "UNEXPECTED_MESSAGE"
	}
	return fmt.Sprintf("status %d", int32(s))
}

// HopType is the type of a HopMessage.
type HopType int32

// Hop message types.
const (
	HopReserve HopType = 0
	HopConnect HopType = 1
	HopStatus  HopType = 2
)

// StopType is the type of a StopMessage.
type StopType int32

// Stop message types.
const (
	StopConnect StopType = 0
	StopStatus  StopType = 1
)

// PeerInfo is the spec's Peer: an ID and its addresses.
type PeerInfo struct {
	ID    peer.ID        // 1
	Addrs []ma.Multiaddr // 2
}

// Reservation is what a relay grants: until Expire (unix seconds), the
// relay's Addrs reach the reserving peer; Voucher is a signed envelope.
type Reservation struct {
	Expire  uint64         // 1
	Addrs   []ma.Multiaddr // 2
	Voucher []byte         // 3
}

// Limit bounds a circuit: Duration seconds and Data bytes in each
// direction; zero means no limit (the field is absent on the wire).
type Limit struct {
	Duration uint32 // 1
	Data     uint64 // 2
}

// HopMessage is exchanged on the hop protocol (client and relay).
type HopMessage struct {
	Type        HopType      // 1, required
	Peer        *PeerInfo    // 2
	Reservation *Reservation // 3
	Limit       *Limit       // 4
	Status      Status       // 5
}

// StopMessage is exchanged on the stop protocol (relay and target).
type StopMessage struct {
	Type   StopType  // 1, required
	Peer   *PeerInfo // 2
	Limit  *Limit    // 3
	Status Status    // 4
}

// ErrMalformed is returned for messages that do not decode.
var ErrMalformed = errors.New("malformed relay message")

// Marshal encodes m.
func (m *HopMessage) Marshal() []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Type))
	if m.Peer != nil {
		b = appendMsg(b, 2, m.Peer.marshal())
	}
	if m.Reservation != nil {
		b = appendMsg(b, 3, m.Reservation.marshal())
	}
	if m.Limit != nil {
		b = appendMsg(b, 4, m.Limit.marshal())
	}
	if m.Status != StatusUnused {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Status))
	}
	return b
}

// Marshal encodes m.
func (m *StopMessage) Marshal() []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Type))
	if m.Peer != nil {
		b = appendMsg(b, 2, m.Peer.marshal())
	}
	if m.Limit != nil {
		b = appendMsg(b, 3, m.Limit.marshal())
	}
	if m.Status != StatusUnused {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Status))
	}
	return b
}

func appendMsg(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendAddrs(b []byte, num protowire.Number, addrs []ma.Multiaddr) []byte {
	for _, a := range addrs {
		b = appendMsg(b, num, a.Bytes())
	}
	return b
}

func (p *PeerInfo) marshal() []byte {
	b := appendMsg(nil, 1, []byte(p.ID))
	return appendAddrs(b, 2, p.Addrs)
}

func (r *Reservation) marshal() []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, r.Expire)
	b = appendAddrs(b, 2, r.Addrs)
	if len(r.Voucher) > 0 {
		b = appendMsg(b, 3, r.Voucher)
	}
	return b
}

func (l *Limit) marshal() []byte {
	var b []byte
	if l.Duration > 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(l.Duration))
	}
	if l.Data > 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, l.Data)
	}
	return b
}

// field is one decoded protobuf field: a varint or a byte string.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// fields walks b, calling fn for each field. Varint and bytes fields are
// decoded; fields of other wire types are skipped. A field that must be
// bytes but is a varint (or the reverse) is fn's to refuse.
func fields(b []byte, fn func(f field) error) error {
	if len(b) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	return pbwire.EachField(b, ErrMalformed, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if typ != protowire.VarintType && typ != protowire.BytesType {
			return nil
		}
		return fn(field{num: num, typ: typ, v: x, b: v})
	})
}

// want checks a known field's wire type.
func (f field) want(typ protowire.Type) error {
	if f.typ != typ {
		return fmt.Errorf("%w: field %d has wire type %d", ErrMalformed, f.num, f.typ)
	}
	return nil
}

// UnmarshalHop decodes a HopMessage. Unknown fields are skipped; known
// ones must have their wire type; the type is required; addresses that do
// not parse are dropped.
func UnmarshalHop(b []byte) (*HopMessage, error) {
	m := &HopMessage{}
	hasType := false
	err := fields(b, func(f field) (err error) {
		switch f.num {
		case 1:
			hasType = true
			if err = f.want(protowire.VarintType); err == nil && f.v > uint64(HopStatus) {
				err = fmt.Errorf("%w: hop type %d", ErrMalformed, f.v)
			}
			m.Type = HopType(f.v)
		case 2:
			if err = f.want(protowire.BytesType); err == nil {
				m.Peer, err = unmarshalPeer(f.b)
			}
		case 3:
			if err = f.want(protowire.BytesType); err == nil {
				m.Reservation, err = unmarshalReservation(f.b)
			}
		case 4:
			if err = f.want(protowire.BytesType); err == nil {
				m.Limit, err = unmarshalLimit(f.b)
			}
		case 5:
			err = f.want(protowire.VarintType)
			m.Status = Status(int32(f.v))
		}
		return err
	})
	if err == nil && !hasType {
		err = fmt.Errorf("%w: no type", ErrMalformed)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalStop decodes a StopMessage, as strictly as UnmarshalHop.
func UnmarshalStop(b []byte) (*StopMessage, error) {
	m := &StopMessage{}
	hasType := false
	err := fields(b, func(f field) (err error) {
		switch f.num {
		case 1:
			hasType = true
			if err = f.want(protowire.VarintType); err == nil && f.v > uint64(StopStatus) {
				err = fmt.Errorf("%w: stop type %d", ErrMalformed, f.v)
			}
			m.Type = StopType(f.v)
		case 2:
			if err = f.want(protowire.BytesType); err == nil {
				m.Peer, err = unmarshalPeer(f.b)
			}
		case 3:
			if err = f.want(protowire.BytesType); err == nil {
				m.Limit, err = unmarshalLimit(f.b)
			}
		case 4:
			err = f.want(protowire.VarintType)
			m.Status = Status(int32(f.v))
		}
		return err
	})
	if err == nil && !hasType {
		err = fmt.Errorf("%w: no type", ErrMalformed)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// addAddr appends the address in v to addrs, within the bounds; an
// address that does not parse is dropped.
func addAddr(addrs []ma.Multiaddr, v []byte) ([]ma.Multiaddr, error) {
	if len(addrs) >= maxAddrs {
		return nil, fmt.Errorf("%w: more than %d addresses", ErrMalformed, maxAddrs)
	}
	if len(v) > maxAddrSize {
		return nil, fmt.Errorf("%w: address of %d bytes", ErrMalformed, len(v))
	}
	if a, err := ma.NewMultiaddrBytes(v); err == nil {
		addrs = append(addrs, a)
	}
	return addrs, nil
}

func unmarshalPeer(b []byte) (*PeerInfo, error) {
	p := &PeerInfo{}
	hasID := false
	err := fields(b, func(f field) (err error) {
		switch f.num {
		case 1:
			if err = f.want(protowire.BytesType); err != nil {
				return err
			}
			id := peer.ID(f.b)
			if err := id.Validate(); err != nil {
				return fmt.Errorf("%w: peer: %v", ErrMalformed, err)
			}
			p.ID, hasID = id, true
		case 2:
			if err = f.want(protowire.BytesType); err == nil {
				p.Addrs, err = addAddr(p.Addrs, f.b)
			}
		}
		return err
	})
	if err == nil && !hasID {
		err = fmt.Errorf("%w: peer without id", ErrMalformed)
	}
	return p, err
}

func unmarshalReservation(b []byte) (*Reservation, error) {
	r := &Reservation{}
	hasExpire := false
	err := fields(b, func(f field) (err error) {
		switch f.num {
		case 1:
			err = f.want(protowire.VarintType)
			r.Expire, hasExpire = f.v, true
		case 2:
			if err = f.want(protowire.BytesType); err == nil {
				r.Addrs, err = addAddr(r.Addrs, f.b)
			}
		case 3:
			if err = f.want(protowire.BytesType); err == nil {
				r.Voucher = append([]byte(nil), f.b...)
			}
		}
		return err
	})
	if err == nil && !hasExpire {
		err = fmt.Errorf("%w: reservation without expiry", ErrMalformed)
	}
	return r, err
}

func unmarshalLimit(b []byte) (*Limit, error) {
	l := &Limit{}
	err := fields(b, func(f field) (err error) {
		switch f.num {
		case 1:
			if err = f.want(protowire.VarintType); err == nil && f.v > 1<<32-1 {
				err = fmt.Errorf("%w: limit duration %d", ErrMalformed, f.v)
			}
			l.Duration = uint32(f.v)
		case 2:
			err = f.want(protowire.VarintType)
			l.Data = f.v
		}
		return err
	})
	return l, err
}
