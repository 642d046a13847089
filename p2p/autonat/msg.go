package autonat

import (
	"errors"
	"fmt"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
)

// Message limits. A dial request names at most MaxAddrs addresses (the
// server considers the first it can dial); dial data comes in chunks of
// at most MaxDataChunk bytes, as the spec says.
const (
	MaxMessageSize = 8 << 10
	MaxAddrs       = 50
	MaxDataChunk   = 4096
)

// ErrBadMessage is returned for malformed AutoNAT messages.
var ErrBadMessage = errors.New("bad autonat message")

// Type says which message of the dial-request stream's oneof a Message is
// (its field number in the spec's Message).
type Type int

// The messages of the dial-request stream.
const (
	DialRequest      Type = 1
	DialResponse     Type = 2
	DialDataRequest  Type = 3
	DialDataResponse Type = 4
)

// ResponseStatus is DialResponse.status: whether the server served the
// request at all.
type ResponseStatus uint64

// ResponseStatus values of the spec.
const (
	StatusInternalError   ResponseStatus = 0
	StatusRequestRejected ResponseStatus = 100
	StatusDialRefused     ResponseStatus = 101
	StatusOK              ResponseStatus = 200
)

// DialStatus is DialResponse.dialStatus: the outcome of the dial back.
type DialStatus uint64

// DialStatus values of the spec.
const (
	DialUnused    DialStatus = 0
	DialError     DialStatus = 100
	DialBackError DialStatus = 101
	DialOK        DialStatus = 200
)

// Message is one message of /libp2p/autonat/2/dial-request, flattened:
// Type says which fields mean something.
type Message struct {
	Type Type
	// DialRequest: the addresses to try in order (an entry that does not
	// parse is nil, so that indexes stay those of the wire) and the nonce
	// the dial back must carry.
	Addrs []ma.Multiaddr
	Nonce uint64
	// DialResponse.
	Status     ResponseStatus
	DialStatus DialStatus
	// DialResponse and DialDataRequest: the address chosen.
	AddrIdx uint32
	// DialDataRequest: how many bytes of dial data the server wants.
	NumBytes uint64
	// DialDataResponse: a chunk of dial data. After UnmarshalMessage it
	// aliases the input.
	Data []byte
}

// Append appends m's encoding (without the length prefix) to b.
func (m *Message) Append(b []byte) []byte {
	var in []byte
	switch m.Type {
	case DialRequest:
		for _, a := range m.Addrs {
			in = protowire.AppendTag(in, 1, protowire.BytesType)
			in = protowire.AppendBytes(in, a.Bytes())
		}
		in = protowire.AppendTag(in, 2, protowire.Fixed64Type)
		in = protowire.AppendFixed64(in, m.Nonce)
	case DialResponse:
		in = appendVarint(in, 1, uint64(m.Status))
		in = appendVarint(in, 2, uint64(m.AddrIdx))
		in = appendVarint(in, 3, uint64(m.DialStatus))
	case DialDataRequest:
		in = appendVarint(in, 1, uint64(m.AddrIdx))
		in = appendVarint(in, 2, m.NumBytes)
	case DialDataResponse:
		in = protowire.AppendTag(in, 1, protowire.BytesType)
		in = protowire.AppendBytes(in, m.Data)
	}
	b = protowire.AppendTag(b, protowire.Number(m.Type), protowire.BytesType)
	return protowire.AppendBytes(b, in)
}

// appendVarint appends a varint field, leaving out zero as proto3 does.
func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// UnmarshalMessage decodes a dial-request stream message. Unknown fields
// are skipped; a message with no known oneof field is an error.
func UnmarshalMessage(b []byte) (*Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadMessage, len(b))
	}
	m := &Message{}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num < 1 || num > 4 {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("%w: field %d has wire type %d", ErrBadMessage, num, typ)
		}
		*m = Message{Type: Type(num)} // oneof: the last one wins
		return m.decodeInner(v)
	})
	if err != nil {
		return nil, err
	}
	if m.Type == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrBadMessage)
	}
	return m, nil
}

func (m *Message) decodeInner(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		want, field := m.fieldType(num)
		if field == nil && want == 0 {
			return nil // unknown field
		}
		if typ != want {
			return fmt.Errorf("%w: field %d.%d has wire type %d", ErrBadMessage, m.Type, num, typ)
		}
		return field(v, x)
	})
}

// fieldType returns the wire type of field num of m's type and the
// function that stores it; zero and nil for fields it does not know.
func (m *Message) fieldType(num protowire.Number) (protowire.Type, func(v []byte, x uint64) error) {
	switch {
	case m.Type == DialRequest && num == 1:
		return protowire.BytesType, m.addAddr
	case m.Type == DialRequest && num == 2:
		return protowire.Fixed64Type, func(_ []byte, x uint64) error { m.Nonce = x; return nil }
	case m.Type == DialResponse && num == 1:
		return protowire.VarintType, func(_ []byte, x uint64) error { m.Status = ResponseStatus(x); return nil }
	case m.Type == DialResponse && num == 2, m.Type == DialDataRequest && num == 1:
		return protowire.VarintType, func(_ []byte, x uint64) error { m.AddrIdx = uint32(x); return nil }
	case m.Type == DialResponse && num == 3:
		return protowire.VarintType, func(_ []byte, x uint64) error { m.DialStatus = DialStatus(x); return nil }
	case m.Type == DialDataRequest && num == 2:
		return protowire.VarintType, func(_ []byte, x uint64) error { m.NumBytes = x; return nil }
	case m.Type == DialDataResponse && num == 1:
		return protowire.BytesType, func(v []byte, _ uint64) error { m.Data = v; return nil }
	}
	return 0, nil
}

func (m *Message) addAddr(v []byte, _ uint64) error {
	if len(m.Addrs) >= MaxAddrs {
		return fmt.Errorf("%w: more than %d addresses", ErrBadMessage, MaxAddrs)
	}
	a, err := ma.NewMultiaddrBytes(v)
	if err != nil {
		a = nil
	}
	m.Addrs = append(m.Addrs, a)
	return nil
}

// eachField calls fn with every field of a protobuf message: its bytes
// (length-delimited fields) or its value (varint and fixed64 ones).
// Groups and fixed32 fields, which autonat does not use, are skipped.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	return pbwire.EachField(b, ErrBadMessage, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if typ == protowire.Fixed32Type || typ == protowire.StartGroupType {
			return nil
		}
		return fn(num, typ, v, x)
	})
}

// AppendDialBack appends a DialBack message carrying nonce to b.
func AppendDialBack(b []byte, nonce uint64) []byte {
	b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, nonce)
}

// UnmarshalDialBack decodes a DialBack message: its nonce.
func UnmarshalDialBack(b []byte) (uint64, error) {
	var nonce uint64
	var seen bool
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		if num != 1 {
			return nil
		}
		if typ != protowire.Fixed64Type {
			return fmt.Errorf("%w: nonce has wire type %d", ErrBadMessage, typ)
		}
		nonce, seen = x, true
		return nil
	})
	if err == nil && !seen {
		err = fmt.Errorf("%w: dial back without a nonce", ErrBadMessage)
	}
	return nonce, err
}

// AppendDialBackResponse appends a DialBackResponse of status OK (0, so
// the message is empty in proto3) to b.
func AppendDialBackResponse(b []byte) []byte { return b }

// UnmarshalDialBackResponse decodes a DialBackResponse: its status, of
// which only 0 (OK) is defined.
func UnmarshalDialBackResponse(b []byte) (uint64, error) {
	var status uint64
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		if num != 1 {
			return nil
		}
		if typ != protowire.VarintType {
			return fmt.Errorf("%w: status has wire type %d", ErrBadMessage, typ)
		}
		status = x
		return nil
	})
	return status, err
}
