package dht

import (
	"errors"
	"fmt"
	"math"
	"net"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
	"github.com/share-p2p/share/p2p/peer"
)

// MessageType is the RPC a message carries; the numbers are libp2p
// kad-dht's.
type MessageType int32

// The message types.
const (
	PutValue     MessageType = 0
	GetValue     MessageType = 1
	AddProvider  MessageType = 2
	GetProviders MessageType = 3
	FindNode     MessageType = 4
	Ping         MessageType = 5
)

func (t MessageType) String() string {
	switch t {
	case PutValue:
		return "PUT_VALUE"
	case GetValue:
		return "GET_VALUE"
	case AddProvider:
		return "ADD_PROVIDER"
	case GetProviders:
		return "GET_PROVIDERS"
	case FindNode:
		return "FIND_NODE"
	case Ping:
		return "PING"
	}
	return fmt.Sprintf("TYPE(%d)", int32(t))
}

// ConnectionType is kad-dht's hint of whether the sender is connected to
// a peer it lists.
type ConnectionType int32

// The connection types of kad-dht.
const (
	NotConnected  ConnectionType = 0
	Connected     ConnectionType = 1
	CanConnect    ConnectionType = 2
	CannotConnect ConnectionType = 3
)

// Limits of the wire format. A message over MaxMessageSize is refused
// before it is read; peer records and lists beyond their limits are
// errors, addresses beyond MaxAddrsPerPeer are dropped.
const (
	MaxMessageSize    = 4 << 20
	MaxPeerRecordSize = 8 << 10
	MaxPeersPerList   = 256
	MaxAddrsPerPeer   = 16
	MaxKeySize        = 256
)

// ErrBadMessage is wrapped by every decoding and validation error.
var ErrBadMessage = errors.New("bad DHT message")

// Message is a kad-dht message: field numbers and types follow libp2p's
// dht.proto (type 1, key 2, record 3, closerPeers 8, providerPeers 9).
type Message struct {
	Type MessageType
	Key  []byte
	// Record is the value of PUT_VALUE and of GET_VALUE's answer.
	Record        *Record
	CloserPeers   []Peer
	ProviderPeers []Peer
}

// Peer is a peer record in a message.
type Peer struct {
	ID         peer.ID
	Addrs      []ma.Multiaddr
	Connection ConnectionType
}

// AddrInfo returns the record's ID and addresses.
func (p Peer) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: p.ID, Addrs: p.Addrs} }

// PeerOf returns the record of ai.
func PeerOf(ai peer.AddrInfo) Peer { return Peer{ID: ai.ID, Addrs: ai.Addrs} }

// Marshal returns the protobuf encoding of m.
func (m *Message) Marshal() []byte { return m.AppendMarshal(nil) }

// AppendMarshal appends the protobuf encoding of m to b.
func (m *Message) AppendMarshal(b []byte) []byte {
	if m.Type != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Type))
	}
	if len(m.Key) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Key)
	}
	if m.Record != nil {
		b = m.Record.appendField(b, 3)
	}
	for _, p := range m.CloserPeers {
		b = appendPeer(b, 8, p)
	}
	for _, p := range m.ProviderPeers {
		b = appendPeer(b, 9, p)
	}
	return b
}

func appendPeer(b []byte, field protowire.Number, p Peer) []byte {
	n := protowire.SizeTag(1) + protowire.SizeBytes(len(p.ID))
	for _, a := range p.Addrs {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(a.Bytes()))
	}
	if p.Connection != 0 {
		n += protowire.SizeTag(3) + protowire.SizeVarint(uint64(p.Connection))
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte(p.ID))
	for _, a := range p.Addrs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, a.Bytes())
	}
	if p.Connection != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(p.Connection))
	}
	return b
}

// UnmarshalMessage decodes a message. Unknown fields (kad-dht's cluster
// level among them) are skipped; peer records with an invalid ID
// are dropped, as are addresses that do not parse. Nothing in the result
// aliases b.
func UnmarshalMessage(b []byte) (*Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadMessage, len(b))
	}
	m := &Message{}
	nPeers := 0
	for len(b) > 0 {
		num, typ, v, x, n, err := pbwire.Next(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			if x > math.MaxInt32 {
				return nil, fmt.Errorf("%w: bad type", ErrBadMessage)
			}
			m.Type = MessageType(x)
		case num == 2 && typ == protowire.BytesType:
			if len(v) > MaxKeySize {
				return nil, fmt.Errorf("%w: bad key", ErrBadMessage)
			}
			m.Key = append([]byte(nil), v...)
		case num == 3 && typ == protowire.BytesType:
			r, err := unmarshalRecord(v)
			if err != nil {
				return nil, err
			}
			m.Record = r
		case (num == 8 || num == 9) && typ == protowire.BytesType:
			if nPeers++; nPeers > 2*MaxPeersPerList {
				return nil, fmt.Errorf("%w: more than %d peers", ErrBadMessage, 2*MaxPeersPerList)
			}
			if err := m.addPeer(num, v); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// addPeer decodes a peer record of field num (8: closer peers, 9:
// providers) and adds it to its list, unless it is one to drop.
func (m *Message) addPeer(num protowire.Number, v []byte) error {
	p, ok, err := unmarshalPeer(v)
	if err != nil || !ok {
		return err
	}
	if num == 8 {
		m.CloserPeers = append(m.CloserPeers, p)
	} else {
		m.ProviderPeers = append(m.ProviderPeers, p)
	}
	if len(m.CloserPeers) > MaxPeersPerList || len(m.ProviderPeers) > MaxPeersPerList {
		return fmt.Errorf("%w: more than %d peers in a list", ErrBadMessage, MaxPeersPerList)
	}
	return nil
}

// unmarshalPeer decodes a peer record; ok is false for a record to drop.
func unmarshalPeer(b []byte) (p Peer, ok bool, err error) {
	if len(b) > MaxPeerRecordSize {
		return p, false, fmt.Errorf("%w: peer record of %d bytes", ErrBadMessage, len(b))
	}
	var id []byte
	for len(b) > 0 {
		num, typ, v, x, n, err := pbwire.Next(b)
		if err != nil {
			return p, false, fmt.Errorf("%w: peer record: %v", ErrBadMessage, err)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			id = v
		case num == 2 && typ == protowire.BytesType:
			if len(p.Addrs) >= MaxAddrsPerPeer {
				continue
			}
			if a, err := ma.NewMultiaddrBytes(v); err == nil {
				p.Addrs = append(p.Addrs, a)
			}
		case num == 3 && typ == protowire.VarintType:
			p.Connection = ConnectionType(x & 0x7fffffff)
		}
	}
	p.ID = peer.ID(id)
	if p.ID.Validate() != nil {
		return Peer{}, false, nil
	}
	return p, true, nil
}

// SaneAddr reports whether a is an address worth dialling or passing on:
// /ip4 or /ip6 followed by /tcp, a port that is not 0, an IP that is
// neither unspecified nor multicast. Loopback and private addresses pass:
// they are what LAN and test networks have.
func SaneAddr(a ma.Multiaddr) bool {
	if len(a) != 2 || a[1].Code() != ma.P_TCP {
		return false
	}
	var ip net.IP
	switch a[0].Code() {
	case ma.P_IP4, ma.P_IP6:
		ip = net.IP(a[0].RawValue())
	default:
		return false
	}
	if ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	port := a[1].RawValue()
	return len(port) == 2 && (port[0] != 0 || port[1] != 0)
}

// SaneAddrs returns the sane addresses of addrs, at most MaxAddrsPerPeer,
// without duplicates.
func SaneAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if len(out) == MaxAddrsPerPeer {
			break
		}
		if !SaneAddr(a) {
			continue
		}
		dup := false
		for _, o := range out {
			if o.Equal(a) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// ValidKey reports whether k is a well-formed multihash (varint code,
// varint length, digest of that length) of at most MaxKeySize bytes:
// provider keys are multihashes.
func ValidKey(k []byte) bool {
	if len(k) == 0 || len(k) > MaxKeySize {
		return false
	}
	_, n := protowire.ConsumeVarint(k)
	if n < 0 {
		return false
	}
	l, m := protowire.ConsumeVarint(k[n:])
	return m > 0 && uint64(len(k)-n-m) == l
}
