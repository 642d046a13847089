package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// PingSize is the size of a ping payload.
const PingSize = 32

// pingIdle is how long the ping handler waits for the next ping.
const pingIdle = time.Minute

// ErrPingMismatch is returned when the echo differs from the ping.
var ErrPingMismatch = errors.New("ping: wrong echo")

func (h *Host) servePing(s *Stream) {
	buf := make([]byte, PingSize)
	for {
		s.SetDeadline(time.Now().Add(pingIdle))
		if _, err := io.ReadFull(s, buf); err != nil {
			if err != io.EOF {
				s.conn.log.Debug("ping: read failed", "err", err)
			}
			s.Reset()
			return
		}
		if _, err := s.Write(buf); err != nil {
			s.Reset()
			return
		}
	}
}

// Ping measures the round-trip time to a peer over /<net>/ping/1.0.0,
// connecting first if needed. ctx bounds it (10 s if it has no deadline).
func (h *Host) Ping(ctx context.Context, id peer.ID) (time.Duration, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	// A ping is a few bytes: a limited relayed connection carries it.
	s, err := h.NewStream(WithLimitedConn(ctx), id, h.PingProtocol())
	if err != nil {
		return 0, err
	}
	defer s.Reset()
	stop := deadlineFromContext(ctx, s, 0)
	defer stop()
	// Settle negotiation first so that the RTT measures one echo.
	if err := s.lazy.Handshake(); err != nil {
		return 0, fmt.Errorf("ping %s: %w", id.ShortString(), err)
	}
	s.negotiated.Store(true)
	out := make([]byte, PingSize)
	rand.Read(out)
	in := make([]byte, PingSize)
	start := time.Now()
	if _, err := s.Write(out); err != nil {
		return 0, fmt.Errorf("ping %s: %w", id.ShortString(), err)
	}
	if _, err := io.ReadFull(s, in); err != nil {
		return 0, fmt.Errorf("ping %s: %w", id.ShortString(), err)
	}
	rtt := time.Since(start)
	if !bytes.Equal(in, out) {
		return 0, ErrPingMismatch
	}
	return rtt, nil
}
