package relay

import (
	"encoding/binary"
	"fmt"
	"io"
)

// readMsg reads one uvarint-length-prefixed message of at most
// MaxMessageSize bytes, reading nothing past it: the bytes after it on a
// circuit belong to the relayed connection, so no buffered reader may
// swallow them.
func readMsg(r io.Reader) ([]byte, error) {
	var one [1]byte
	var n uint64
	for shift := uint(0); ; shift += 7 {
		if shift > 14 { // 3 bytes cover MaxMessageSize many times over
			return nil, fmt.Errorf("%w: length prefix too long", ErrMalformed)
		}
		if _, err := io.ReadFull(r, one[:]); err != nil {
			return nil, err
		}
		n |= uint64(one[0]&0x7f) << shift
		if one[0] < 0x80 {
			break
		}
	}
	if n > MaxMessageSize {
		return nil, fmt.Errorf("%w: message of %d bytes exceeds %d", ErrMalformed, n, MaxMessageSize)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// writeMsg writes msg with its uvarint length prefix in one Write.
func writeMsg(w io.Writer, msg []byte) error {
	b := binary.AppendUvarint(make([]byte, 0, len(msg)+binary.MaxVarintLen32), uint64(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

func readHop(r io.Reader) (*HopMessage, error) {
	b, err := readMsg(r)
	if err != nil {
		return nil, err
	}
	return UnmarshalHop(b)
}

func readStop(r io.Reader) (*StopMessage, error) {
	b, err := readMsg(r)
	if err != nil {
		return nil, err
	}
	return UnmarshalStop(b)
}
