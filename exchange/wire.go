package exchange

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
)

// Limits of the wire format.
const (
	// MaxBlockSize is the largest block the protocol carries (the
	// chunker's largest chunk).
	MaxBlockSize = 4 << 20
	// MaxCIDSize is the largest binary CID accepted in a frame.
	MaxCIDSize = 128
	// MaxFrameSize is the largest frame (type byte and body) accepted.
	MaxFrameSize = 1 + binary.MaxVarintLen64 + MaxCIDSize + MaxBlockSize
)

// msgType is a frame's first byte.
type msgType byte

const (
	msgWantBlock msgType = 0x01
	msgWantHave  msgType = 0x02
	msgCancel    msgType = 0x03
	msgBlock     msgType = 0x10
	msgHave      msgType = 0x11
	msgDontHave  msgType = 0x12
)

func (t msgType) String() string {
	switch t {
	case msgWantBlock:
		return "WANT_BLOCK"
	case msgWantHave:
		return "WANT_HAVE"
	case msgCancel:
		return "CANCEL"
	case msgBlock:
		return "BLOCK"
	case msgHave:
		return "HAVE"
	case msgDontHave:
		return "DONT_HAVE"
	}
	return fmt.Sprintf("type(%#x)", byte(t))
}

// Errors of the wire format; a peer that causes one is cut off.
var (
	// ErrFrameTooLarge means a peer announced a frame above MaxFrameSize.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrBadMessage means a frame does not decode.
	ErrBadMessage = errors.New("malformed message")
	// ErrProtocol means a peer sent a well-formed message it must not
	// send: a request to a client, an answer nobody asked for.
	ErrProtocol = errors.New("protocol violation")
)

// message is a decoded frame. data aliases the frame buffer.
type message struct {
	typ  msgType
	cid  cid.Cid
	data []byte
	// hasher has hashed most of data as it arrived (frameReader.hash);
	// its Verify finishes the check.
	hasher *dag.BlockHasher
}

// decodeMessage decodes a frame body (type byte included).
func decodeMessage(b []byte) (message, error) {
	if len(b) == 0 {
		return message{}, fmt.Errorf("%w: empty frame", ErrBadMessage)
	}
	m := message{typ: msgType(b[0])}
	b = b[1:]
	switch m.typ {
	case msgWantBlock, msgWantHave, msgCancel, msgHave, msgDontHave:
		c, err := castCID(b)
		if err != nil {
			return message{}, fmt.Errorf("%w: %s: %v", ErrBadMessage, m.typ, err)
		}
		m.cid = c
	case msgBlock:
		l, n, err := cidLen(b)
		if err != nil {
			return message{}, err
		}
		if l > len(b)-n {
			return message{}, fmt.Errorf("%w: BLOCK: CID of %d bytes in %d", ErrBadMessage, l, len(b)-n)
		}
		c, err := castCID(b[n : n+l])
		if err != nil {
			return message{}, fmt.Errorf("%w: BLOCK: %v", ErrBadMessage, err)
		}
		m.cid, m.data = c, b[n+l:]
		if len(m.data) > MaxBlockSize {
			return message{}, fmt.Errorf("%w: BLOCK of %d bytes", ErrBadMessage, len(m.data))
		}
	default:
		return message{}, fmt.Errorf("%w: unknown type %#x", ErrBadMessage, byte(m.typ))
	}
	return m, nil
}

// cidLen decodes the minimal uvarint CID length at the start of a BLOCK
// body and returns it with the bytes it takes.
func cidLen(b []byte) (l, n int, err error) {
	v, n := binary.Uvarint(b[:min(len(b), 2)])
	if n <= 0 || v > MaxCIDSize || n != uvarintLen(v) {
		return 0, 0, fmt.Errorf("%w: BLOCK: bad CID length", ErrBadMessage)
	}
	return int(v), n, nil
}

func castCID(b []byte) (cid.Cid, error) {
	if len(b) == 0 || len(b) > MaxCIDSize {
		return cid.Undef, fmt.Errorf("CID of %d bytes", len(b))
	}
	return cid.Cast(b)
}

// appendMessage appends the frame of a CID-only message.
func appendMessage(b []byte, t msgType, c cid.Cid) []byte {
	k := c.KeyString()
	b = binary.AppendUvarint(b, uint64(1+len(k)))
	b = append(b, byte(t))
	return append(b, k...)
}

// appendBlockHeader appends everything of a BLOCK frame but the data.
func appendBlockHeader(b []byte, c cid.Cid, size int) []byte {
	k := c.KeyString()
	b = binary.AppendUvarint(b, uint64(1+uvarintLen(uint64(len(k)))+len(k)+size))
	b = append(b, byte(msgBlock))
	b = binary.AppendUvarint(b, uint64(len(k)))
	return append(b, k...)
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// frameReader reads frames. Small frames land in a scratch buffer, large
// ones (blocks) in pooled buffers that the caller hands back with putBuf.
type frameReader struct {
	br      *bufio.Reader
	max     uint64 // largest frame accepted
	scratch [256]byte
	// hash: hash each BLOCK's data as it arrives (message.hasher), while
	// it is still in the CPU's cache.
	hash bool
}

func newFrameReader(r io.Reader) *frameReader {
	return newFrameReaderMax(r, MaxBlockSize)
}

// newFrameReaderMax accepts frames that carry blocks of up to maxBlock
// bytes (at most MaxBlockSize).
func newFrameReaderMax(r io.Reader, maxBlock int) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, 64<<10), max: uint64(frameSize(min(maxBlock, MaxBlockSize)))}
}

// frameSize is the largest frame that carries a block of maxBlock bytes.
func frameSize(maxBlock int) int { return 1 + binary.MaxVarintLen64 + MaxCIDSize + maxBlock }

// next reads one frame and decodes it. A BLOCK's data is always in a
// pooled buffer, buf, that the caller owns and releases with putBuf (the
// data outlives the next frame: the verifier and the reader take it);
// other messages have no buf and are valid only until the next call.
func (fr *frameReader) next() (msg message, buf *[]byte, err error) {
	n, err := fr.readLength()
	if err != nil {
		return message{}, nil, err
	}
	if n == 0 {
		return message{}, nil, fmt.Errorf("%w: empty frame", ErrBadMessage)
	}
	if n > fr.max {
		return message{}, nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	if n <= uint64(len(fr.scratch)) {
		body := fr.scratch[:n]
		if _, err := io.ReadFull(fr.br, body); err != nil {
			return message{}, nil, noEOF(err)
		}
		msg, err := decodeMessage(body)
		if err != nil || msg.typ != msgBlock {
			return msg, nil, err
		}
		// A small block: out of the scratch buffer the next frame reuses.
		buf := getBuf(len(msg.data))
		msg.data = (*buf)[:copy(*buf, msg.data)]
		return msg, buf, nil
	}
	return fr.nextBlock(int(n))
}

// nextBlock reads a frame of n bytes too large for the scratch buffer,
// which only a BLOCK may be: its header into the scratch buffer, its data
// into a pooled buffer of the data's size.
func (fr *frameReader) nextBlock(n int) (message, *[]byte, error) {
	const maxHeader = 1 + 2 + MaxCIDSize
	hdr, err := fr.br.Peek(maxHeader) // n > len(scratch) > maxHeader
	if err != nil {
		return message{}, nil, noEOF(err)
	}
	if msgType(hdr[0]) != msgBlock {
		return message{}, nil, fmt.Errorf("%w: %s of %d bytes", ErrBadMessage, msgType(hdr[0]), n)
	}
	l, ln, err := cidLen(hdr[1:])
	if err != nil {
		return message{}, nil, err
	}
	c, err := castCID(hdr[1+ln : 1+ln+l])
	if err != nil {
		return message{}, nil, fmt.Errorf("%w: BLOCK: %v", ErrBadMessage, err)
	}
	fr.br.Discard(1 + ln + l)
	size := n - (1 + ln + l)
	if size > MaxBlockSize {
		return message{}, nil, fmt.Errorf("%w: BLOCK of %d bytes", ErrBadMessage, size)
	}
	buf := getBuf(size)
	data := (*buf)[:size]
	if !fr.hash {
		if _, err := io.ReadFull(fr.br, data); err != nil {
			putBuf(buf)
			return message{}, nil, noEOF(err)
		}
		return message{typ: msgBlock, cid: c, data: data}, buf, nil
	}
	h := new(dag.BlockHasher)
	for got := 0; got < size; {
		n, err := fr.br.Read(data[got:min(got+hashPiece, size)])
		got += n
		h.Advance(data[:got])
		if err != nil && got < size {
			putBuf(buf)
			return message{}, nil, noEOF(err)
		}
	}
	return message{typ: msgBlock, cid: c, data: data, hasher: h}, buf, nil
}

// hashPiece is the most a hashing frameReader reads before hashing: the
// piece is still in the CPU's L2 cache.
const hashPiece = 256 << 10

// maxLengthBytes is the length of the uvarint of MaxFrameSize.
const maxLengthBytes = (28 + 6) / 7

// readLength reads a frame's uvarint length, refusing to read past the
// bytes that a length up to MaxFrameSize needs.
func (fr *frameReader) readLength() (uint64, error) {
	var x uint64
	for i := 0; ; i++ {
		b, err := fr.br.ReadByte()
		if err != nil {
			if i > 0 {
				return 0, noEOF(err)
			}
			return 0, err // io.EOF between frames is a clean end
		}
		x |= uint64(b&0x7f) << (7 * i)
		if x > MaxFrameSize {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrFrameTooLarge, MaxFrameSize)
		}
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: non-minimal length", ErrBadMessage)
			}
			return x, nil
		}
		if i == maxLengthBytes-1 {
			return 0, fmt.Errorf("%w: length of more than %d bytes", ErrFrameTooLarge, maxLengthBytes)
		}
	}
}

// noEOF turns an EOF inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Buffer pools by power-of-two size class, from 4 KiB to the largest frame.
const minBufClass = 12

var bufPools [bits.UintSize]sync.Pool

func bufClass(n int) int {
	if n <= 1<<minBufClass {
		return minBufClass
	}
	return bits.Len(uint(n - 1))
}

// getBuf returns a buffer of length at least n.
func getBuf(n int) *[]byte {
	c := bufClass(n)
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 1<<c)
	return &b
}

// putBuf returns a buffer from getBuf to its pool; nil is ignored.
func putBuf(b *[]byte) {
	if b == nil {
		return
	}
	c := bufClass(cap(*b))
	if 1<<c != cap(*b) {
		return
	}
	*b = (*b)[:cap(*b)]
	bufPools[c].Put(b)
}
