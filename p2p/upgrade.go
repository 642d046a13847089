package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	yamux "github.com/libp2p/go-yamux/v4"

	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/p2p/sec"
)

// MuxerProtocol names yamux in multistream-select.
const MuxerProtocol = "/yamux/1.0.0"

// upgrade turns a raw connection into an authenticated, multiplexed one:
// protector, /tls/1.0.0, TLS 1.3, /yamux/1.0.0, yamux. want is the PeerID
// to insist on when dialling (empty for inbound). The whole upgrade runs
// under one deadline; raw is closed on failure.
func (h *Host) upgrade(ctx context.Context, raw net.Conn, dir Direction, want peer.ID) (*Conn, error) {
	return h.upgradeAs(ctx, raw, dir, want, dir == Outbound)
}

// upgradeAs is upgrade with the handshake role chosen apart from the
// direction: a TCP simultaneous open (hole punching) is a connection both
// sides dialled, and one of them must take the listener's part
// (multistream listener, TLS server, yamux server) for the other's
// (client). The server part then insists on want too.
func (h *Host) upgradeAs(ctx context.Context, raw net.Conn, dir Direction, want peer.ID, client bool) (_ *Conn, err error) {
	defer func() {
		if err != nil {
			raw.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.HandshakeTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	raw.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	conn := raw
	if h.cfg.Protector != nil {
		if conn, err = h.cfg.Protector(raw); err != nil {
			return nil, fmt.Errorf("private network: %w", err)
		}
	}
	var sess *yamux.Session
	var remote peer.ID
	ycfg := yamuxConfig(&h.cfg, h.log)
	mem := &muxMem{}
	if client {
		// Optimistic: the proposal travels with the ClientHello, the answer
		// is read before the ServerHello.
		lz, err := mss.SelectLazy(conn, sec.ProtocolID)
		if err != nil {
			return nil, err
		}
		bc := &batchConn{Conn: wrappedConn{Conn: conn, rw: lz}}
		tc, err := h.ident.Client(ctx, bc, want)
		if err != nil {
			return nil, fmt.Errorf("security handshake: %w", err)
		}
		// Waiting for the muxer answer costs no round trip that matters:
		// nothing can use the session before it, and it proves the
		// listener accepted our certificate.
		if _, err := mss.Select(tc, MuxerProtocol); err != nil {
			return nil, fmt.Errorf("muxer negotiation: %w", err)
		}
		raw.SetDeadline(time.Time{})
		if conn == raw {
			bc.direct(raw)
		}
		if sess, err = yamux.Client(batchTLS{tc, bc}, ycfg, mem.newSpan); err != nil {
			return nil, err
		}
		remote = want
		return h.newConn(sess, raw, remote, dir), nil
	}
	if _, err := mss.Negotiate(conn, isProto(sec.ProtocolID), nil); err != nil {
		return nil, fmt.Errorf("security negotiation: %w", err)
	}
	bc := &batchConn{Conn: conn}
	tc, remote, err := h.ident.Server(ctx, bc)
	if err != nil {
		return nil, fmt.Errorf("security handshake: %w", err)
	}
	if want != "" && remote != want {
		tc.Close()
		return nil, fmt.Errorf("security handshake: the peer is %s, not %s", remote, want)
	}
	if _, err := mss.Negotiate(tc, isProto(MuxerProtocol), nil); err != nil {
		return nil, fmt.Errorf("muxer negotiation: %w", err)
	}
	raw.SetDeadline(time.Time{})
	if conn == raw {
		bc.direct(raw)
	}
	if sess, err = yamux.Server(batchTLS{tc, bc}, ycfg, mem.newSpan); err != nil {
		return nil, err
	}
	return h.newConn(sess, raw, remote, dir), nil
}

func isProto(want string) func(string) bool {
	return func(p string) bool { return p == want }
}

func (h *Host) newConn(sess *yamux.Session, raw net.Conn, remote peer.ID, dir Direction) *Conn {
	c := &Conn{
		h:          h,
		sess:       sess,
		raw:        raw,
		remote:     remote,
		laddr:      multiaddrOf(raw.LocalAddr()),
		raddr:      multiaddrOf(raw.RemoteAddr()),
		dir:        dir,
		opened:     time.Now(),
		identified: make(chan struct{}),
	}
	c.log = h.log.With("peer", remote.ShortString(), "dir", dir.String(), "addr", c.raddr)
	c.touch()
	return c
}

// acceptLoop accepts raw connections and upgrades each in its own
// goroutine, at most MaxPendingHandshakes at a time.
func (h *Host) acceptLoop(ln Listener) {
	defer h.wg.Done()
	for {
		raw, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || h.ctx.Err() != nil {
				return
			}
			h.log.Warn("accept failed", "addr", ln.Multiaddr(), "err", err)
			select {
			case <-time.After(50 * time.Millisecond): // e.g. out of file descriptors
				continue
			case <-h.ctx.Done():
				return
			}
		}
		select {
		case h.pending <- struct{}{}:
		default:
			h.log.Debug("refusing connection", "reason", "too many pending handshakes", "addr", raw.RemoteAddr())
			raw.Close()
			continue
		}
		h.mu.Lock()
		full := h.nIn >= h.cfg.Limits.MaxInbound
		h.mu.Unlock()
		if full {
			<-h.pending
			h.log.Debug("refusing connection", "reason", "inbound connection limit", "addr", raw.RemoteAddr())
			raw.Close()
			continue
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			// A hole punch's initiator that reached our listener
			// takes the listener's part: we take the client's.
			want := h.punchFromAddr(raw.RemoteAddr())
			c, err := h.upgradeAs(h.ctx, raw, Inbound, want, want != "")
			<-h.pending
			if err != nil {
				h.log.Debug("inbound handshake failed", "addr", raw.RemoteAddr(), "err", err)
				return
			}
			if err := h.addConn(c); err != nil {
				h.log.Debug("inbound connection dropped", "peer", c.remote.ShortString(), "err", err)
			}
		}()
	}
}
