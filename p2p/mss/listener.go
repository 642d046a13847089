package mss

import (
	"fmt"
	"io"
)

// Negotiate runs the listener side on rw: it reads the dialer's header and
// proposals, answers "na" to those that supported rejects and "ls" with the
// list, and echoes the first one accepted, which it returns. Header and
// answer go out in one write. The caller sets deadlines on rw.
func Negotiate(rw io.ReadWriter, supported func(proto string) bool, list func() []string) (string, error) {
	if err := readHeader(rw); err != nil {
		return "", err
	}
	out := AppendMessage(make([]byte, 0, 128), ProtocolID)
	for i := 0; ; i++ {
		if i == maxProposals {
			return "", ErrTooManyProposals
		}
		p, err := ReadMessage(rw)
		if err != nil {
			return "", err
		}
		switch {
		case p == msgLS:
			out = appendList(out, list)
		case p != msgNA && validProtocol(p) == nil && supported(p):
			out = AppendMessage(out, p)
			if _, err := rw.Write(out); err != nil {
				return "", err
			}
			return p, nil
		default:
			out = AppendMessage(out, msgNA)
		}
		if _, err := rw.Write(out); err != nil {
			return "", err
		}
		out = out[:0]
	}
}

// appendList appends the answer to "ls": one frame holding a framed line
// per protocol and a final '\n'.
func appendList(b []byte, list func() []string) []byte {
	var inner []byte
	if list != nil {
		for _, p := range list() {
			if len(inner)+len(p)+8 > MaxMessage {
				break
			}
			inner = AppendMessage(inner, p)
		}
	}
	inner = append(inner, '\n')
	return AppendMessage(b, string(inner[:len(inner)-1]))
}

// ParseList decodes the answer to "ls" (the message without its final '\n').
func ParseList(msg string) ([]string, error) {
	b := []byte(msg)
	var out []string
	for len(b) > 0 {
		n, k := uvarint(b)
		if k <= 0 || n == 0 || uint64(len(b)-k) < n {
			return nil, fmt.Errorf("%w: bad ls entry", ErrMalformed)
		}
		p, err := ParseMessage(b[k : k+int(n)])
		if err != nil {
			return nil, err
		}
		out = append(out, p)
		b = b[k+int(n):]
	}
	return out, nil
}

func uvarint(b []byte) (uint64, int) {
	var n uint64
	for i := 0; i < len(b) && i < 3; i++ {
		n |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			if b[i] == 0 && i > 0 {
				return 0, -1 // non-minimal
			}
			return n, i + 1
		}
	}
	return 0, -1
}
