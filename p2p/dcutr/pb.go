package dcutr

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
	"github.com/share-p2p/share/p2p"
)

// Type is a HolePunch message's type.
type Type int32

// The message types of the spec.
const (
	Connect Type = 100
	Sync    Type = 300
)

func (t Type) String() string {
	switch t {
	case Connect:
		return "CONNECT"
	case Sync:
		return "SYNC"
	}
	return fmt.Sprintf("type(%d)", int32(t))
}

// Bounds of a message. The spec says to refuse messages over 4 KiB; of
// the addresses one may carry (hundreds of short ones), the first
// MaxAddrs are kept: a peer has a handful of public addresses.
const (
	MaxMsgSize = 4 << 10
	MaxAddrs   = 32
)

// ErrMalformed is a message that does not decode or breaks the protocol.
var ErrMalformed = errors.New("dcutr: malformed message")

// Msg is a HolePunch message:
//
//	message HolePunch { optional Type type = 1; repeated bytes ObsAddrs = 2; }
type Msg struct {
	Type  Type
	Addrs []ma.Multiaddr
}

// Marshal encodes m.
func (m *Msg) Marshal() []byte {
	n := 1 + protowire.SizeVarint(uint64(m.Type))
	for _, a := range m.Addrs {
		n += 1 + protowire.SizeBytes(len(a.Bytes()))
	}
	b := make([]byte, 0, n)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Type))
	for _, a := range m.Addrs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, a.Bytes())
	}
	return b
}

// Unmarshal decodes a message. The wire format must be valid and the type
// one of the spec's; fields it does not know are skipped. Addresses that
// do not parse are dropped, and those past MaxAddrs are not parsed.
func Unmarshal(b []byte) (*Msg, error) {
	if len(b) > MaxMsgSize {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrMalformed, len(b), MaxMsgSize)
	}
	m := &Msg{}
	typed := false
	for len(b) > 0 {
		num, wt, v, x, n, err := pbwire.Next(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		b = b[n:]
		switch {
		case num == 1 && wt == protowire.VarintType:
			m.Type, typed = Type(int32(x)), true
		case num == 2 && wt == protowire.BytesType:
			if len(m.Addrs) >= MaxAddrs {
				continue
			}
			if a, err := ma.NewMultiaddrBytes(v); err == nil {
				m.Addrs = append(m.Addrs, a)
			}
		case num == 1 || num == 2:
			return nil, fmt.Errorf("%w: field %d of wire type %d", ErrMalformed, num, wt)
		}
	}
	if !typed || m.Type != Connect && m.Type != Sync {
		return nil, fmt.Errorf("%w: type %v", ErrMalformed, m.Type)
	}
	return m, nil
}

// writeMsg writes m with its length prefix.
func writeMsg(w io.Writer, m *Msg) error {
	return p2p.WriteDelimited(w, m.Marshal())
}

// readMsg reads one length-prefixed message of type want.
func readMsg(r *bufio.Reader, want Type) (*Msg, error) {
	b, err := p2p.ReadDelimited(r, r, MaxMsgSize)
	if err != nil {
		return nil, err
	}
	m, err := Unmarshal(b)
	if err != nil {
		return nil, err
	}
	if m.Type != want {
		return nil, fmt.Errorf("%w: %v, want %v", ErrMalformed, m.Type, want)
	}
	return m, nil
}
