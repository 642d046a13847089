package send

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/send/cpace"
)

// The send protocol's messages. Each is a uvarint length, then a type
// byte and its body, MaxMessage bytes at most:
//
//	hello    R->S  sid (16 bytes) || CPace MSGa (its AD is the rendezvous)
//	reply    S->R  Tb (32) || CPace MSGb
//	refuse   S->R  a reason byte
//	confirm  R->S  Ta (32)
//	offer    S->R  MAC (32) || root CID (length-prefixed) || size (uvarint) || name
//	progress R->S  bytes received so far (uvarint)
//	done     R->S  bytes received (uvarint): everything is here
//	bye      S->R  empty: the sender has seen done
const (
	msgHello byte = iota + 1
	msgReply
	msgRefuse
	msgConfirm
	msgOffer
	msgProgress
	msgDone
	msgBye
)

// MaxMessage bounds a message (a name of 255 bytes is far below it).
const MaxMessage = 4096

// sidSize is the session identifier's size the receiver draws.
const sidSize = 16

// Refusal reasons.
const (
	refuseElsewhere byte = iota + 1 // not this sender's rendezvous
	refuseBusy                      // another receiver has it
	refuseWrongCode                 // the key confirmation failed
)

// ErrBadMessage is a message of the send protocol that does not parse.
var ErrBadMessage = errors.New("send: bad message")

// message is one message as read.
type message struct {
	typ  byte
	body []byte
}

// readMessage reads one message.
func readMessage(r *bufio.Reader) (message, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return message{}, io.ErrUnexpectedEOF
		}
		return message{}, err
	}
	if n == 0 || n > MaxMessage {
		return message{}, fmt.Errorf("%w: length %d", ErrBadMessage, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return message{}, err
	}
	return message{typ: b[0], body: b[1:]}, nil
}

// appendMessage appends a message of typ with body to b.
func appendMessage(b []byte, typ byte, body []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(body)+1))
	b = append(b, typ)
	return append(b, body...)
}

// expect checks that m is of typ (a refusal is an error of its own).
func expect(m message, typ byte) error {
	switch {
	case m.typ == typ:
		return nil
	case m.typ == msgRefuse && len(m.body) == 1:
		return refusal(m.body[0])
	}
	return fmt.Errorf("%w: message type %d where %d was expected", ErrBadMessage, m.typ, typ)
}

// refusal is the receiver's error for a sender's refusal.
func refusal(reason byte) error {
	switch reason {
	case refuseElsewhere:
		return errElsewhere
	case refuseBusy:
		return ErrBusy
	case refuseWrongCode:
		return ErrWrongCode
	}
	return fmt.Errorf("%w: refusal %d", ErrBadMessage, reason)
}

// hello is the receiver's first message.
type hello struct {
	sid, msgA []byte
}

func decodeHello(body []byte) (hello, error) {
	if len(body) < sidSize {
		return hello{}, fmt.Errorf("%w: short hello", ErrBadMessage)
	}
	return hello{sid: body[:sidSize], msgA: body[sidSize:]}, nil
}

// decodeTagged splits a body that starts with a tag.
func decodeTagged(body []byte) (tag, rest []byte, err error) {
	if len(body) < cpace.MACSize {
		return nil, nil, fmt.Errorf("%w: short message", ErrBadMessage)
	}
	return body[:cpace.MACSize], body[cpace.MACSize:], nil
}

// Offer is what a sender sends once the code is confirmed: the root of
// what it sends, its name and size.
type Offer struct {
	Root cid.Cid
	Name string
	Size uint64
}

// appendOffer appends o's encoding (without its MAC).
func appendOffer(b []byte, o Offer) []byte {
	root := o.Root.Bytes()
	b = binary.AppendUvarint(b, uint64(len(root)))
	b = append(b, root...)
	b = binary.AppendUvarint(b, o.Size)
	return append(b, o.Name...)
}

// decodeOffer decodes an offer's encoding (without its MAC).
func decodeOffer(b []byte) (Offer, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return Offer{}, fmt.Errorf("%w: offer's CID", ErrBadMessage)
	}
	root, err := cid.Cast(b[k : k+int(n)])
	if err != nil {
		return Offer{}, fmt.Errorf("%w: offer's CID: %v", ErrBadMessage, err)
	}
	b = b[k+int(n):]
	size, k := binary.Uvarint(b)
	if k <= 0 {
		return Offer{}, fmt.Errorf("%w: offer's size", ErrBadMessage)
	}
	return Offer{Root: root, Size: size, Name: string(b[k:])}, nil
}

// decodeCount decodes a progress or done body.
func decodeCount(b []byte) (uint64, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || k != len(b) {
		return 0, fmt.Errorf("%w: count", ErrBadMessage)
	}
	return n, nil
}
