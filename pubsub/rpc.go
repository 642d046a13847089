package pubsub

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
	"github.com/share-p2p/share/p2p/peer"
)

// ErrBadRPC is wrapped by every error decoding an RPC a peer sent.
var ErrBadRPC = errors.New("bad pubsub RPC")

// RPC is one protobuf message of the pubsub wire: subscription changes,
// published messages and gossipsub's control messages.
type RPC struct {
	Subs    []SubOpt
	Publish []*Message
	Control Control
}

// SubOpt is a (un)subscription to one topic.
type SubOpt struct {
	Subscribe bool
	Topic     string
}

// Control is gossipsub's control part of an RPC.
type Control struct {
	IHave []IHave
	IWant []IWant
	Graft []string // topics
	Prune []Prune
}

// empty reports whether c carries nothing.
func (c *Control) empty() bool {
	return len(c.IHave)+len(c.IWant)+len(c.Graft)+len(c.Prune) == 0
}

// IHave announces the IDs of messages of a topic the sender holds.
type IHave struct {
	Topic string
	IDs   []string
}

// IWant asks for messages by ID.
type IWant struct{ IDs []string }

// Prune removes the receiver from the sender's mesh of Topic; it should
// not GRAFT again for Backoff seconds, and may try the peers listed.
type Prune struct {
	Topic   string
	Peers   []PeerInfo
	Backoff uint64 // seconds; 0 means unset
}

// PeerInfo is a peer offered by peer exchange, with its signed peer
// record if the sender has one (kept opaque).
type PeerInfo struct {
	ID     []byte
	Record []byte
}

// Message is a pubsub message as the wire carries it. Data, From, Seqno,
// Signature and Key of a received message alias the RPC's buffer, which
// is never reused.
type Message struct {
	From      []byte // the author's peer ID bytes
	Data      []byte
	Seqno     []byte // 8 bytes, big-endian
	Topic     string
	Signature []byte
	Key       []byte // the author's public key, when From does not embed it

	// hasData records that Data was on the wire (even empty): the
	// signature covers the field's presence.
	hasData bool
	// id and received are set once the message is accepted.
	id       string
	received peer.ID
}

// Field numbers of the wire (libp2p/specs pubsub/README.md and gossipsub).
const (
	fRPCSubs, fRPCPublish, fRPCControl       = 1, 2, 3
	fSubSubscribe, fSubTopic                 = 1, 2
	fMsgFrom, fMsgData, fMsgSeqno, fMsgTopic = 1, 2, 3, 4
	fMsgSignature, fMsgKey                   = 5, 6
	fCtlIHave, fCtlIWant, fCtlGraft          = 1, 2, 3
	fCtlPrune                                = 4
	fPruneTopic, fPrunePeers, fPruneBackoff  = 1, 2, 3
)

// AppendRPC appends r's protobuf encoding to b.
func AppendRPC(b []byte, r *RPC) []byte {
	for _, s := range r.Subs {
		b = appendSub(b, s)
	}
	for _, m := range r.Publish {
		b = protowire.AppendTag(b, fRPCPublish, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(m.size()))
		b = m.appendTo(b, true)
	}
	if !r.Control.empty() {
		b = protowire.AppendTag(b, fRPCControl, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(r.Control.size()))
		b = r.Control.appendTo(b)
	}
	return b
}

// Size returns the length of r's encoding.
func (r *RPC) Size() int {
	n := 0
	for _, s := range r.Subs {
		n += bytesField(fRPCSubs, subSize(s))
	}
	for _, m := range r.Publish {
		n += bytesField(fRPCPublish, m.size())
	}
	if !r.Control.empty() {
		n += bytesField(fRPCControl, r.Control.size())
	}
	return n
}

// bytesField is the size of a length-delimited field of n bytes.
func bytesField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func subSize(s SubOpt) int {
	return protowire.SizeTag(fSubSubscribe) + 1 + bytesField(fSubTopic, len(s.Topic))
}

func appendSub(b []byte, s SubOpt) []byte {
	b = protowire.AppendTag(b, fRPCSubs, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(subSize(s)))
	b = protowire.AppendTag(b, fSubSubscribe, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeBool(s.Subscribe))
	b = protowire.AppendTag(b, fSubTopic, protowire.BytesType)
	return protowire.AppendString(b, s.Topic)
}

// size is the length of m's encoding with its signature and key.
func (m *Message) size() int { return m.signedSize() + m.authSize() }

func (m *Message) authSize() int {
	n := 0
	if m.Signature != nil {
		n += bytesField(fMsgSignature, len(m.Signature))
	}
	if m.Key != nil {
		n += bytesField(fMsgKey, len(m.Key))
	}
	return n
}

// signedSize is the length of the part of m a signature covers.
func (m *Message) signedSize() int {
	n := bytesField(fMsgTopic, len(m.Topic))
	if m.From != nil {
		n += bytesField(fMsgFrom, len(m.From))
	}
	if m.hasData || m.Data != nil {
		n += bytesField(fMsgData, len(m.Data))
	}
	if m.Seqno != nil {
		n += bytesField(fMsgSeqno, len(m.Seqno))
	}
	return n
}

// appendTo appends m's fields in field order, as kubo marshals them (the
// signature is over this canonical form), with signature and key if auth.
func (m *Message) appendTo(b []byte, auth bool) []byte {
	if m.From != nil {
		b = protowire.AppendTag(b, fMsgFrom, protowire.BytesType)
		b = protowire.AppendBytes(b, m.From)
	}
	if m.hasData || m.Data != nil {
		b = protowire.AppendTag(b, fMsgData, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Data)
	}
	if m.Seqno != nil {
		b = protowire.AppendTag(b, fMsgSeqno, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Seqno)
	}
	b = protowire.AppendTag(b, fMsgTopic, protowire.BytesType)
	b = protowire.AppendString(b, m.Topic)
	if !auth {
		return b
	}
	if m.Signature != nil {
		b = protowire.AppendTag(b, fMsgSignature, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Signature)
	}
	if m.Key != nil {
		b = protowire.AppendTag(b, fMsgKey, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Key)
	}
	return b
}

func (c *Control) size() int {
	n := 0
	for _, ih := range c.IHave {
		n += bytesField(fCtlIHave, idsSize(fCtlIHave, ih.Topic, ih.IDs))
	}
	for _, iw := range c.IWant {
		n += bytesField(fCtlIWant, idsSize(0, "", iw.IDs))
	}
	for _, t := range c.Graft {
		n += bytesField(fCtlGraft, bytesField(1, len(t)))
	}
	for _, p := range c.Prune {
		n += bytesField(fCtlPrune, pruneSize(p))
	}
	return n
}

// idsSize is the size of {1: topic (if withTopic), 2 (or 1): ids}.
func idsSize(withTopic int, topic string, ids []string) int {
	n := 0
	num := protowire.Number(1)
	if withTopic != 0 {
		n += bytesField(1, len(topic))
		num = 2
	}
	for _, id := range ids {
		n += bytesField(num, len(id))
	}
	return n
}

func pruneSize(p Prune) int {
	n := bytesField(fPruneTopic, len(p.Topic))
	for _, pi := range p.Peers {
		n += bytesField(fPrunePeers, peerInfoSize(pi))
	}
	if p.Backoff != 0 {
		n += protowire.SizeTag(fPruneBackoff) + protowire.SizeVarint(p.Backoff)
	}
	return n
}

func peerInfoSize(pi PeerInfo) int {
	n := bytesField(1, len(pi.ID))
	if pi.Record != nil {
		n += bytesField(2, len(pi.Record))
	}
	return n
}

func (c *Control) appendTo(b []byte) []byte {
	for _, ih := range c.IHave {
		b = protowire.AppendTag(b, fCtlIHave, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(idsSize(fCtlIHave, ih.Topic, ih.IDs)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, ih.Topic)
		b = appendIDs(b, 2, ih.IDs)
	}
	for _, iw := range c.IWant {
		b = protowire.AppendTag(b, fCtlIWant, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(idsSize(0, "", iw.IDs)))
		b = appendIDs(b, 1, iw.IDs)
	}
	for _, t := range c.Graft {
		b = protowire.AppendTag(b, fCtlGraft, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(bytesField(1, len(t))))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, t)
	}
	for _, p := range c.Prune {
		b = appendPrune(b, p)
	}
	return b
}

func appendIDs(b []byte, num protowire.Number, ids []string) []byte {
	for _, id := range ids {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendString(b, id)
	}
	return b
}

func appendPrune(b []byte, p Prune) []byte {
	b = protowire.AppendTag(b, fCtlPrune, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(pruneSize(p)))
	b = protowire.AppendTag(b, fPruneTopic, protowire.BytesType)
	b = protowire.AppendString(b, p.Topic)
	for _, pi := range p.Peers {
		b = protowire.AppendTag(b, fPrunePeers, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(peerInfoSize(pi)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, pi.ID)
		if pi.Record != nil {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendBytes(b, pi.Record)
		}
	}
	if p.Backoff != 0 {
		b = protowire.AppendTag(b, fPruneBackoff, protowire.VarintType)
		b = protowire.AppendVarint(b, p.Backoff)
	}
	return b
}

// UnmarshalRPC decodes an RPC. The result aliases b. Unknown fields are
// skipped (newer peers send IDONTWANT, field 5 of the control part);
// malformed ones are errors wrapping ErrBadRPC.
func UnmarshalRPC(b []byte) (*RPC, error) {
	r := &RPC{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == fRPCSubs && typ == protowire.BytesType:
			s, err := unmarshalSub(v)
			r.Subs = append(r.Subs, s)
			return err
		case num == fRPCPublish && typ == protowire.BytesType:
			m, err := unmarshalMessage(v)
			r.Publish = append(r.Publish, m)
			return err
		case num == fRPCControl && typ == protowire.BytesType:
			return r.Control.unmarshal(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// fields calls fn with each field of b (see pbwire.EachField).
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	return pbwire.EachField(b, ErrBadRPC, fn)
}

func unmarshalSub(b []byte) (SubOpt, error) {
	var s SubOpt
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == fSubSubscribe && typ == protowire.VarintType:
			s.Subscribe = x != 0
		case num == fSubTopic && typ == protowire.BytesType:
			s.Topic = string(v)
		}
		return nil
	})
	return s, err
}

func unmarshalMessage(b []byte) (*Message, error) {
	m := &Message{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fMsgFrom:
			m.From = v
		case fMsgData:
			m.Data, m.hasData = v, true
		case fMsgSeqno:
			m.Seqno = v
		case fMsgTopic:
			m.Topic = string(v)
		case fMsgSignature:
			m.Signature = v
		case fMsgKey:
			m.Key = v
		}
		return nil
	})
	return m, err
}

func (c *Control) unmarshal(b []byte) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fCtlIHave:
			topic, ids, err := unmarshalIDs(v, true)
			c.IHave = append(c.IHave, IHave{Topic: topic, IDs: ids})
			return err
		case fCtlIWant:
			_, ids, err := unmarshalIDs(v, false)
			c.IWant = append(c.IWant, IWant{IDs: ids})
			return err
		case fCtlGraft:
			topic, _, err := unmarshalIDs(v, true)
			c.Graft = append(c.Graft, topic)
			return err
		case fCtlPrune:
			p, err := unmarshalPrune(v)
			c.Prune = append(c.Prune, p)
			return err
		}
		return nil
	})
}

// unmarshalIDs decodes {1: topic, 2: ids} (withTopic) or {1: ids}.
func unmarshalIDs(b []byte, withTopic bool) (string, []string, error) {
	var topic string
	var ids []string
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch {
		case withTopic && num == 1:
			topic = string(v)
		case withTopic && num == 2, !withTopic && num == 1:
			ids = append(ids, string(v))
		}
		return nil
	})
	return topic, ids, err
}

func unmarshalPrune(b []byte) (Prune, error) {
	var p Prune
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == fPruneTopic && typ == protowire.BytesType:
			p.Topic = string(v)
		case num == fPrunePeers && typ == protowire.BytesType:
			pi, err := unmarshalPeerInfo(v)
			p.Peers = append(p.Peers, pi)
			return err
		case num == fPruneBackoff && typ == protowire.VarintType:
			p.Backoff = x
		}
		return nil
	})
	return p, err
}

func unmarshalPeerInfo(b []byte) (PeerInfo, error) {
	var pi PeerInfo
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ == protowire.BytesType && num == 1 {
			pi.ID = v
		} else if typ == protowire.BytesType && num == 2 {
			pi.Record = v
		}
		return nil
	})
	return pi, err
}
