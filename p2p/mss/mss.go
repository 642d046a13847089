// Package mss implements multistream-select 1.0, the protocol negotiation
// that runs on every raw connection and every stream: both ends exchange the
// header "/multistream/1.0.0", the dialer proposes protocols and the listener
// echoes the one it accepts or answers "na". Messages are uvarint-length-
// prefixed lines ending in '\n'.
//
// The dialer side of a single proposal is optimistic (SelectLazy): header,
// proposal and the first application bytes go out in one write, and the
// listener's answer is read on the first Read, so negotiation costs no round
// trip.
package mss

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ProtocolID is the multistream-select header.
const ProtocolID = "/multistream/1.0.0"

// MaxMessage is the largest message accepted: a longer one ends the
// negotiation with ErrTooLarge.
const MaxMessage = 1024

// maxProposals bounds how many protocols a dialer may propose on one stream.
const maxProposals = 32

var (
	// ErrNotSupported is returned when the listener answers "na" to every
	// proposal.
	ErrNotSupported = errors.New("protocol not supported")
	// ErrTooLarge is returned for a message longer than MaxMessage.
	ErrTooLarge = errors.New("multistream message too large")
	// ErrMalformed is returned for messages that are not '\n'-terminated
	// lines or for a wrong header.
	ErrMalformed = errors.New("malformed multistream message")
	// ErrTooManyProposals is returned when a dialer keeps proposing.
	ErrTooManyProposals = errors.New("too many protocol proposals")
)

const (
	msgNA = "na"
	msgLS = "ls"
)

// AppendMessage appends the framed form of msg (length, msg, '\n') to b.
func AppendMessage(b []byte, msg string) []byte {
	b = binary.AppendUvarint(b, uint64(len(msg)+1))
	b = append(b, msg...)
	return append(b, '\n')
}

// WriteMessage writes one framed message.
func WriteMessage(w io.Writer, msg string) error {
	_, err := w.Write(AppendMessage(nil, msg))
	return err
}

// ReadMessage reads one framed message and returns it without its '\n'.
// It reads byte by byte up to the end of the message and never further, so
// the bytes after it stay in r.
func ReadMessage(r io.Reader) (string, error) {
	b, err := readFrame(r)
	if err != nil {
		return "", err
	}
	return ParseMessage(b)
}

// ParseMessage checks the body of one frame and returns the line without
// its '\n'.
func ParseMessage(b []byte) (string, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return "", fmt.Errorf("%w: missing newline", ErrMalformed)
	}
	return string(b[:len(b)-1]), nil
}

// readFrame reads a uvarint length and that many bytes (at most MaxMessage).
func readFrame(r io.Reader) ([]byte, error) {
	var one [1]byte
	var n uint64
	for shift := 0; ; shift += 7 {
		if shift > 14 { // three bytes encode more than MaxMessage already
			return nil, ErrTooLarge
		}
		if _, err := io.ReadFull(r, one[:]); err != nil {
			return nil, err
		}
		n |= uint64(one[0]&0x7f) << shift
		if one[0] < 0x80 {
			if one[0] == 0 && shift > 0 {
				return nil, fmt.Errorf("%w: non-minimal varint", ErrMalformed)
			}
			break
		}
	}
	if n > MaxMessage {
		return nil, ErrTooLarge
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

func readHeader(r io.Reader) error {
	h, err := ReadMessage(r)
	if err != nil {
		return err
	}
	if h != ProtocolID {
		return fmt.Errorf("%w: header %q", ErrMalformed, truncate(h))
	}
	return nil
}

func validProtocol(p string) error {
	if p == "" || len(p)+1 > MaxMessage || strings.ContainsRune(p, '\n') {
		return fmt.Errorf("%w: bad protocol name %q", ErrMalformed, truncate(p))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
