package exchange

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/net/peer"
)

// sentReq is a request outstanding at a peer.
type sentReq struct {
	e    *entry
	sent time.Time
}

// peerConn is a session's stream to one provider: a sender goroutine
// writes WANT and CANCEL frames as the window allows, a receiver reads the
// answers. Fields are guarded by the session's mutex unless noted.
type peerConn struct {
	s    *Session
	id   peer.ID
	st   Stream
	dead bool

	reqs      map[cid.Cid]sentReq
	cancelled map[cid.Cid]struct{} // cancelled requests whose block may still come
	cancelQ   []cid.Cid            // CANCELs to send

	window      int
	rate        float64 // bytes per second, smoothed
	minRTT      time.Duration
	accStart    time.Time
	accBytes    int64
	dontHaveRun int

	wake chan struct{}
}

func (pc *peerConn) signal() {
	select {
	case pc.wake <- struct{}{}:
	default:
	}
}

// run opens the stream and sends requests until the session or the
// stream ends.
func (pc *peerConn) run() {
	s := pc.s
	st, err := s.e.host.NewStream(s.ctx, pc.id, s.e.proto)
	if err != nil {
		s.dropPeer(pc, fmt.Errorf("open stream: %w", err), false)
		return
	}
	s.mu.Lock()
	if pc.dead || s.finished {
		s.mu.Unlock()
		st.Reset()
		return
	}
	pc.st = st
	s.mu.Unlock()
	go pc.receive(st)

	w := deadlineWriter{st, s.cfg.WriteTimeout}
	var buf []byte
	for {
		select {
		case <-pc.wake:
		case <-s.done:
			return
		}
		s.mu.Lock()
		if pc.dead || s.finished {
			s.mu.Unlock()
			return
		}
		buf = buf[:0]
		for _, c := range pc.cancelQ {
			buf = appendMessage(buf, msgCancel, c)
		}
		pc.cancelQ = pc.cancelQ[:0]
		buf = s.assignLocked(pc, buf)
		s.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if _, err := w.Write(buf); err != nil {
			s.dropPeer(pc, fmt.Errorf("write: %w", err), false)
			return
		}
	}
}

// idle reports whether pc has nothing outstanding, so that silence is fine.
func (pc *peerConn) idle() bool {
	pc.s.mu.Lock()
	defer pc.s.mu.Unlock()
	return len(pc.reqs) == 0 && !pc.s.finished
}

// receive reads the answers on st until it fails or the session ends.
func (pc *peerConn) receive(st Stream) {
	s := pc.s
	fr := newFrameReaderMax(st, s.cfg.MaxBlockSize)
	fr.hash = true
	for {
		st.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
		if _, err := fr.br.Peek(1); err != nil {
			if isTimeout(err) && pc.idle() {
				continue
			}
			pc.fail(st, err, false)
			return
		}
		m, buf, err := fr.next()
		if err != nil {
			pc.fail(st, err, errors.Is(err, ErrBadMessage) || errors.Is(err, ErrFrameTooLarge))
			return
		}
		ok := false
		switch m.typ {
		case msgBlock:
			ok = s.received(pc, m.cid, m.data, buf, m.hasher)
		case msgDontHave:
			ok = s.dontHave(pc, m.cid)
		}
		if !ok {
			s.dropPeer(pc, fmt.Errorf("%w: unrequested %s %s", ErrProtocol, m.typ, m.cid), true)
			return
		}
	}
}

// fail ends the receiver after a read error.
func (pc *peerConn) fail(st Stream, err error, bad bool) {
	pc.s.dropPeer(pc, fmt.Errorf("read: %w", err), bad)
	if err != io.EOF {
		st.Reset() // after a graceful close, the server did not finish in time
	}
}

// close ends pc when the session ends: gracefully after a complete fetch
// (the receiver drains late answers until the server closes), with a reset
// otherwise.
func (pc *peerConn) close(graceful bool) {
	s := pc.s
	s.mu.Lock()
	st := pc.st
	pc.dead = true
	s.mu.Unlock()
	pc.signal()
	if st == nil {
		return
	}
	if graceful {
		st.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
		st.Close()
		return
	}
	st.Reset()
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
