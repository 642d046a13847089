package mss

import (
	"fmt"
	"io"
	"sync"
)

// Select negotiates one of protos on rw, proposing them in order, and
// returns the accepted one. It waits for the listener's answers, so it
// costs a round trip; for a single protocol prefer SelectLazy.
func Select(rw io.ReadWriter, protos ...string) (string, error) {
	if len(protos) == 0 {
		return "", fmt.Errorf("%w: no protocol proposed", ErrNotSupported)
	}
	for _, p := range protos {
		if err := validProtocol(p); err != nil {
			return "", err
		}
	}
	b := AppendMessage(nil, ProtocolID)
	b = AppendMessage(b, protos[0])
	if _, err := rw.Write(b); err != nil {
		return "", err
	}
	if err := readHeader(rw); err != nil {
		return "", err
	}
	for i, p := range protos {
		if i > 0 {
			if err := WriteMessage(rw, p); err != nil {
				return "", err
			}
		}
		resp, err := ReadMessage(rw)
		if err != nil {
			return "", err
		}
		switch resp {
		case p:
			return p, nil
		case msgNA:
		default:
			return "", fmt.Errorf("%w: proposed %q, got %q", ErrMalformed, p, truncate(resp))
		}
	}
	return "", fmt.Errorf("%w: %v", ErrNotSupported, protos)
}

// LazyConn is a stream on which protocol negotiation is in flight: the
// header and proposal go out with the first Write (or Read, or Close), and
// the listener's answer is checked on the first Read.
type LazyConn struct {
	rw    io.ReadWriter
	proto string

	wmu   sync.Mutex
	wdone bool          // the proposal was (or is being) sent
	sent  chan struct{} // closed once the proposal write returned
	werr  error         // its error, readable after sent is closed

	rmu   sync.Mutex
	rdone bool
	rerr  error
}

// smallWrite is the largest first write that is copied into the same
// buffer as the negotiation messages; larger ones go out as a second write.
const smallWrite = 16 << 10

// SelectLazy starts the optimistic negotiation of proto on rw and returns
// at once. Errors (including ErrNotSupported) surface on Read, Write or
// Handshake.
func SelectLazy(rw io.ReadWriter, proto string) (*LazyConn, error) {
	if err := validProtocol(proto); err != nil {
		return nil, err
	}
	return &LazyConn{rw: rw, proto: proto, sent: make(chan struct{})}, nil
}

// Protocol returns the protocol being negotiated.
func (l *LazyConn) Protocol() string { return l.proto }

// Write sends the negotiation messages with p on the first call. Later
// writes wait until the proposal is out, so that they cannot overtake it.
func (l *LazyConn) Write(p []byte) (int, error) {
	l.wmu.Lock()
	if l.wdone {
		l.wmu.Unlock()
		<-l.sent
		if l.werr != nil {
			return 0, l.werr
		}
		return l.rw.Write(p)
	}
	l.wdone = true
	l.wmu.Unlock()
	b := AppendMessage(make([]byte, 0, 64+len(l.proto)+min(len(p), smallWrite)), ProtocolID)
	b = AppendMessage(b, l.proto)
	small := len(p) <= smallWrite
	if small {
		b = append(b, p...)
	}
	_, l.werr = l.rw.Write(b)
	close(l.sent)
	if l.werr != nil {
		return 0, l.werr
	}
	if small {
		return len(p), nil
	}
	return l.rw.Write(p)
}

// Flush sends the negotiation messages unless a Write already did (or is
// doing) so; it does not wait for a concurrent Write.
func (l *LazyConn) Flush() error {
	l.wmu.Lock()
	done := l.wdone
	l.wmu.Unlock()
	if done {
		select {
		case <-l.sent:
			return l.werr
		default:
			return nil
		}
	}
	_, err := l.Write(nil)
	return err
}

// Handshake sends the proposal if needed and waits for the answer.
func (l *LazyConn) Handshake() error {
	if err := l.Flush(); err != nil {
		return err
	}
	l.rmu.Lock()
	defer l.rmu.Unlock()
	return l.readAnswer()
}

// readAnswer must be called with rmu held.
func (l *LazyConn) readAnswer() error {
	if l.rdone {
		return l.rerr
	}
	l.rdone = true
	if err := readHeader(l.rw); err != nil {
		l.rerr = err
		return err
	}
	resp, err := ReadMessage(l.rw)
	switch {
	case err != nil:
		l.rerr = err
	case resp == msgNA:
		l.rerr = fmt.Errorf("%w: %s", ErrNotSupported, l.proto)
	case resp != l.proto:
		l.rerr = fmt.Errorf("%w: proposed %q, got %q", ErrMalformed, l.proto, truncate(resp))
	}
	return l.rerr
}

// Read checks the listener's answer on the first call, then reads.
func (l *LazyConn) Read(p []byte) (int, error) {
	l.rmu.Lock()
	if !l.rdone {
		// The listener answers only once it has our proposal.
		if err := l.Flush(); err != nil {
			l.rmu.Unlock()
			return 0, err
		}
		if err := l.readAnswer(); err != nil {
			l.rmu.Unlock()
			return 0, err
		}
	}
	err := l.rerr
	l.rmu.Unlock()
	if err != nil {
		return 0, err
	}
	return l.rw.Read(p)
}
