package bitswap

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/internal/pbwire"
)

// The protocol IDs of Bitswap, as boxo registers them. 1.1.0 added CID
// prefixes to blocks (1.0.0 carries CIDv0 data only), 1.2.0 want-have,
// DONT_HAVE and block presences; the unversioned name is 1.0.0's.
const (
	Protocol120       = "/ipfs/bitswap/1.2.0"
	Protocol110       = "/ipfs/bitswap/1.1.0"
	Protocol100       = "/ipfs/bitswap/1.0.0"
	ProtocolNoVersion = "/ipfs/bitswap"
)

// Protocols lists what we offer and dial, newest first (boxo's order).
var Protocols = []string{Protocol120, Protocol110, Protocol100, ProtocolNoVersion}

// WantType says what a want asks for.
type WantType int32

// The want types of 1.2.0 (older peers send only WantBlock).
const (
	WantBlock WantType = 0
	WantHave  WantType = 1
)

// Entry is one wantlist entry.
type Entry struct {
	Cid      cid.Cid
	Priority int32
	// Cancel withdraws an earlier want of Cid (the other fields are then
	// meaningless).
	Cancel bool
	Type   WantType
	// SendDontHave asks for a DONT_HAVE presence when the peer lacks Cid.
	SendDontHave bool
}

// Block is a block as a message carries it: 1.1.0+ sends the CID prefix and
// the data (the receiver hashes to learn the CID); 1.0.0 sends data only
// (CIDv0), which decodes with the CIDv0 prefix.
type Block struct {
	Prefix cid.Prefix
	Data   []byte
}

// Presence answers a want-have (Have) or a want the server lacks (DontHave).
type Presence struct {
	Cid      cid.Cid
	DontHave bool
}

// Message is a Bitswap message. A message carries any of the three parts:
// a client's wantlist, a server's blocks and presences.
type Message struct {
	Full         bool // the wantlist replaces the previous one
	Wants        []Entry
	Blocks       []Block
	Presences    []Presence
	PendingBytes int32 // what the server still has queued for the receiver
}

// Limits of the wire format. MaxMessageSize is libp2p's
// network.MessageSizeMax, the most boxo reads or writes in one message
// (its length prefix excluded). MaxCidSize is boxo's MaximumAllowedCid: a
// longer CID in a message makes it malformed.
const (
	MaxMessageSize = 4 << 20
	MaxCidSize     = 4*binary64 + maxDigest
	maxDigest      = 128
	binary64       = 10 // bytes of the longest uvarint
)

// ErrBadMessage is wrapped by every decoding error.
var ErrBadMessage = errors.New("bad bitswap message")

// cidV0Prefix is what 1.0.0's blocks are: dag-pb under SHA2-256.
var cidV0Prefix = cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: 32}

// Field numbers of boxo's message.proto.
const (
	fWantlist     = 1 // Wantlist
	fBlocksV0     = 2 // repeated bytes, 1.0.0
	fPayload      = 3 // repeated Block, 1.1.0+
	fPresences    = 4 // repeated BlockPresence
	fPendingBytes = 5 // int32

	fEntries = 1 // Wantlist.entries
	fFull    = 2 // Wantlist.full

	fEntryBlock    = 1 // Entry.block: the CID's bytes
	fEntryPriority = 2
	fEntryCancel   = 3
	fEntryType     = 4
	fEntryDontHave = 5 // Entry.sendDontHave

	fBlockPrefix = 1 // Block.prefix
	fBlockData   = 2 // Block.data

	fPresenceCid  = 1
	fPresenceType = 2
)

// isV0 reports whether proto is 1.0.0 (or the unversioned name): blocks
// as data only, no presences or pending bytes.
func isV0(proto string) bool { return proto == Protocol100 || proto == ProtocolNoVersion }

// AppendMessage appends m to b as one length-prefixed (uvarint) message in
// the encoding of protocol proto. 1.0.0 sends blocks as data only (field 2:
// the receiver takes them for CIDv0 blocks) and no presences or pending
// bytes; entries keep their want type, as boxo sends them, which a 1.0.0
// peer ignores. Blocks come last, so that a writer can send their data
// without copying it (see appendHead).
func AppendMessage(b []byte, m *Message, proto string) []byte {
	b = appendHead(b, m, proto)
	for _, blk := range m.Blocks {
		b = appendBlockHead(b, blk, proto)
		b = append(b, blk.Data...)
	}
	return b
}

// appendHead appends m's length prefix and every field before its blocks'
// data; a block's data follows its appendBlockHead.
func appendHead(b []byte, m *Message, proto string) []byte {
	b = protowire.AppendVarint(b, uint64(size(m, proto)))
	if m.Full || len(m.Wants) > 0 {
		b = protowire.AppendTag(b, fWantlist, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(wantlistSize(m)))
		for i := range m.Wants {
			b = appendEntry(b, &m.Wants[i])
		}
		if m.Full {
			b = appendVarintField(b, fFull, 1)
		}
	}
	if isV0(proto) {
		return b
	}
	for _, p := range m.Presences {
		b = protowire.AppendTag(b, fPresences, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(presenceSize(p)))
		b = appendBytesField(b, fPresenceCid, p.Cid.Bytes())
		if p.DontHave {
			b = appendVarintField(b, fPresenceType, 1)
		}
	}
	if m.PendingBytes != 0 {
		b = appendVarintField(b, fPendingBytes, uint64(m.PendingBytes))
	}
	return b
}

// appendBlockHead appends the part of blk's field that comes before its
// data.
func appendBlockHead(b []byte, blk Block, proto string) []byte {
	if isV0(proto) {
		b = protowire.AppendTag(b, fBlocksV0, protowire.BytesType)
		return protowire.AppendVarint(b, uint64(len(blk.Data)))
	}
	b = protowire.AppendTag(b, fPayload, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(payloadSize(blk)))
	b = protowire.AppendTag(b, fBlockPrefix, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(prefixSize(blk.Prefix)))
	b = appendPrefix(b, blk.Prefix)
	b = protowire.AppendTag(b, fBlockData, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(len(blk.Data)))
}

func appendEntry(b []byte, e *Entry) []byte {
	b = protowire.AppendTag(b, fEntries, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entrySize(e)))
	b = appendBytesField(b, fEntryBlock, e.Cid.Bytes())
	if e.Priority != 0 {
		b = appendVarintField(b, fEntryPriority, uint64(e.Priority))
	}
	if e.Cancel {
		b = appendVarintField(b, fEntryCancel, 1)
	}
	if e.Type != 0 {
		b = appendVarintField(b, fEntryType, uint64(e.Type))
	}
	if e.SendDontHave {
		b = appendVarintField(b, fEntryDontHave, 1)
	}
	return b
}

func appendVarintField(b []byte, f protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, f, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBytesField(b []byte, f protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, f, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendPrefix appends p as four uvarints, as cid.Prefix.Bytes does,
// without allocating.
func appendPrefix(b []byte, p cid.Prefix) []byte {
	b = protowire.AppendVarint(b, p.Version)
	b = protowire.AppendVarint(b, p.Codec)
	b = protowire.AppendVarint(b, p.MhType)
	return protowire.AppendVarint(b, uint64(p.MhLength))
}

// Sizes of the encoded parts (what protobuf's length prefixes say). A
// one-byte tag is protowire.SizeTag of every field number here.

func size(m *Message, proto string) int {
	n := 0
	if m.Full || len(m.Wants) > 0 {
		n += 1 + protowire.SizeBytes(wantlistSize(m))
	}
	for _, blk := range m.Blocks {
		if isV0(proto) {
			n += 1 + protowire.SizeBytes(len(blk.Data))
		} else {
			n += 1 + protowire.SizeBytes(payloadSize(blk))
		}
	}
	if isV0(proto) {
		return n
	}
	for _, p := range m.Presences {
		n += 1 + protowire.SizeBytes(presenceSize(p))
	}
	if m.PendingBytes != 0 {
		n += 1 + protowire.SizeVarint(uint64(m.PendingBytes))
	}
	return n
}

func wantlistSize(m *Message) int {
	n := 0
	for i := range m.Wants {
		n += 1 + protowire.SizeBytes(entrySize(&m.Wants[i]))
	}
	if m.Full {
		n += 2
	}
	return n
}

func entrySize(e *Entry) int {
	n := 1 + protowire.SizeBytes(e.Cid.ByteLen())
	if e.Priority != 0 {
		n += 1 + protowire.SizeVarint(uint64(e.Priority))
	}
	if e.Cancel {
		n += 2
	}
	if e.Type != 0 {
		n += 1 + protowire.SizeVarint(uint64(e.Type))
	}
	if e.SendDontHave {
		n += 2
	}
	return n
}

func payloadSize(blk Block) int {
	return 1 + protowire.SizeBytes(prefixSize(blk.Prefix)) + 1 + protowire.SizeBytes(len(blk.Data))
}

func prefixSize(p cid.Prefix) int {
	return protowire.SizeVarint(p.Version) + protowire.SizeVarint(p.Codec) +
		protowire.SizeVarint(p.MhType) + protowire.SizeVarint(uint64(p.MhLength))
}

func presenceSize(p Presence) int {
	n := 1 + protowire.SizeBytes(p.Cid.ByteLen())
	if p.DontHave {
		n += 2
	}
	return n
}

// Unmarshal decodes one message body (without its length prefix). The
// blocks' data alias b; CIDs do not. Unknown fields are skipped, as
// protobuf's decoders do; a known field of the wrong wire type, a
// truncated field, an invalid CID or prefix or an enum value Bitswap does
// not define is an error wrapping ErrBadMessage. It never panics, and what
// it allocates is bounded by a small multiple of len(b).
func Unmarshal(b []byte) (*Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadMessage, len(b), MaxMessageSize)
	}
	m := &Message{}
	err := eachField(b, func(f protowire.Number, t protowire.Type, v []byte, x uint64) error {
		switch f {
		case fWantlist:
			return m.decodeWantlist(v)
		case fBlocksV0:
			m.Blocks = append(m.Blocks, Block{Prefix: cidV0Prefix, Data: v})
		case fPayload:
			return m.decodePayload(v)
		case fPresences:
			return m.decodePresence(v)
		case fPendingBytes:
			m.PendingBytes = int32(x)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// The wire type of each known field, by message and field number.
var (
	messageTypes  = [...]protowire.Type{0, protowire.BytesType, protowire.BytesType, protowire.BytesType, protowire.BytesType, protowire.VarintType}
	wantlistTypes = [...]protowire.Type{0, protowire.BytesType, protowire.VarintType}
	entryTypes    = [...]protowire.Type{0, protowire.BytesType, protowire.VarintType, protowire.VarintType, protowire.VarintType, protowire.VarintType}
	blockTypes    = [...]protowire.Type{0, protowire.BytesType, protowire.BytesType}
	presenceTypes = [...]protowire.Type{0, protowire.BytesType, protowire.VarintType}
)

// eachFieldOf calls fn with every field of b that types names (v for
// bytes fields, x for varints), checking their wire types; it skips the
// others. (A loop over pbwire.Next rather than pbwire.EachField: this is
// the hot decoder, and a second closure would cost a call per field.)
func eachFieldOf(b []byte, types []protowire.Type, fn func(f protowire.Number, t protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		f, t, v, x, n, err := pbwire.Next(b)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadMessage, err)
		}
		b = b[n:]
		switch {
		case f <= 0 || int(f) >= len(types):
			continue
		case t != types[f]:
			return fmt.Errorf("%w: field %d has wire type %d", ErrBadMessage, f, t)
		}
		if err := fn(f, t, v, x); err != nil {
			return err
		}
	}
	return nil
}

// eachField is eachFieldOf for the fields of a Message.
func eachField(b []byte, fn func(f protowire.Number, t protowire.Type, v []byte, x uint64) error) error {
	return eachFieldOf(b, messageTypes[:], fn)
}

func (m *Message) decodeWantlist(b []byte) error {
	return eachFieldOf(b, wantlistTypes[:], func(f protowire.Number, _ protowire.Type, v []byte, x uint64) error {
		if f == fFull {
			m.Full = x != 0
			return nil
		}
		e, err := decodeEntry(v)
		if err != nil {
			return err
		}
		m.Wants = append(m.Wants, e)
		return nil
	})
}

func decodeEntry(b []byte) (Entry, error) {
	var e Entry
	err := eachFieldOf(b, entryTypes[:], func(f protowire.Number, _ protowire.Type, v []byte, x uint64) error {
		switch f {
		case fEntryBlock:
			c, err := decodeCid(v)
			e.Cid = c
			return err
		case fEntryPriority:
			e.Priority = int32(x)
		case fEntryCancel:
			e.Cancel = x != 0
		case fEntryType:
			if x > uint64(WantHave) {
				return fmt.Errorf("%w: want type %d", ErrBadMessage, x)
			}
			e.Type = WantType(x)
		case fEntryDontHave:
			e.SendDontHave = x != 0
		}
		return nil
	})
	if err == nil && !e.Cid.Defined() {
		err = fmt.Errorf("%w: wantlist entry without a CID", ErrBadMessage)
	}
	return e, err
}

func (m *Message) decodePayload(b []byte) error {
	var blk Block
	havePrefix := false
	err := eachFieldOf(b, blockTypes[:], func(f protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		if f == fBlockData {
			blk.Data = v
			return nil
		}
		p, err := decodePrefix(v)
		blk.Prefix, havePrefix = p, true
		return err
	})
	if err == nil && !havePrefix {
		err = fmt.Errorf("%w: block without a CID prefix", ErrBadMessage)
	}
	if err != nil {
		return err
	}
	m.Blocks = append(m.Blocks, blk)
	return nil
}

func (m *Message) decodePresence(b []byte) error {
	var p Presence
	err := eachFieldOf(b, presenceTypes[:], func(f protowire.Number, _ protowire.Type, v []byte, x uint64) error {
		if f == fPresenceType {
			if x > 1 {
				return fmt.Errorf("%w: presence type %d", ErrBadMessage, x)
			}
			p.DontHave = x == 1
			return nil
		}
		c, err := decodeCid(v)
		p.Cid = c
		return err
	})
	if err == nil && !p.Cid.Defined() {
		err = fmt.Errorf("%w: block presence without a CID", ErrBadMessage)
	}
	if err != nil {
		return err
	}
	m.Presences = append(m.Presences, p)
	return nil
}

func decodeCid(b []byte) (cid.Cid, error) {
	if len(b) > MaxCidSize {
		return cid.Undef, fmt.Errorf("%w: CID of %d bytes", ErrBadMessage, len(b))
	}
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return c, nil
}

// decodePrefix parses a CID prefix: four minimal uvarints, nothing after,
// version 0 only as dag-pb under SHA2-256, a digest of at most 128 bytes.
func decodePrefix(b []byte) (cid.Prefix, error) {
	var v [4]uint64
	for i := range v {
		x, n, err := varint.FromUvarint(b)
		if err != nil {
			return cid.Prefix{}, fmt.Errorf("%w: CID prefix: %v", ErrBadMessage, err)
		}
		v[i], b = x, b[n:]
	}
	p := cid.Prefix{Version: v[0], Codec: v[1], MhType: v[2], MhLength: int(min(v[3], math.MaxInt32))}
	switch {
	case len(b) > 0:
		return p, fmt.Errorf("%w: CID prefix: trailing bytes", ErrBadMessage)
	case v[3] > maxDigest:
		return p, fmt.Errorf("%w: CID prefix: digest of %d bytes", ErrBadMessage, v[3])
	case p.Version > 1:
		return p, fmt.Errorf("%w: CID version %d", ErrBadMessage, p.Version)
	case p.Version == 0 && p != cidV0Prefix:
		return p, fmt.Errorf("%w: CIDv0 prefix that is not dag-pb sha2-256", ErrBadMessage)
	}
	return p, nil
}

// CID hashes the block's data under its prefix: the CID the block is.
// BLAKE3-256 and SHA2-256 are hashed here, others by go-multihash.
func (b Block) CID() (cid.Cid, error) {
	p := b.Prefix
	switch {
	case p.Version == 1 && p.MhType == mh.BLAKE3 && p.MhLength == 32:
		return dag.Sum(p.Codec, b.Data), nil
	case p.MhType == mh.SHA2_256 && p.MhLength == 32:
		d := sha256.Sum256(b.Data)
		h := append([]byte{mh.SHA2_256, 32}, d[:]...)
		if p.Version == 0 {
			return cid.NewCidV0(h), nil
		}
		return cid.NewCidV1(p.Codec, h), nil
	}
	c, err := p.Sum(b.Data)
	if err != nil {
		return cid.Undef, fmt.Errorf("block prefix %v: %w", p, err)
	}
	return c, nil
}
