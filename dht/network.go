package dht

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// Protocol returns the DHT protocol ID of a network: "/share/kad/1.0.0".
// DHTs on different networks never talk: their transports carry different
// protocol IDs.
func Protocol(network string) string { return p2p.ProtocolID(network, "kad", "1.0.0") }

// Request is an inbound request as a transport hands it to the DHT.
type Request struct {
	// From is the sender and the addresses it can be reached at.
	From peer.AddrInfo
	// FromServer tells whether the sender serves the DHT itself (identify
	// lists the kad protocol; in-memory: it registered a handler). Only
	// such senders may enter the routing table.
	FromServer bool
	Msg        *Message
}

// Handler answers a request; a nil answer or an error resets the stream.
type Handler func(ctx context.Context, req Request) (*Message, error)

// Network carries DHT messages: one request, one answer. The DHT uses it
// both ways: Send as a client, Serve to answer in server mode. A Network is
// bound to one protocol ID, so to one network name.
type Network interface {
	// Send delivers req to a peer and returns its answer.
	Send(ctx context.Context, to peer.AddrInfo, req *Message) (*Message, error)
	// Serve answers inbound requests with h; nil stops serving (and stops
	// advertising the protocol).
	Serve(h Handler)
}

// ErrNoAnswer is wrapped by transport errors: the peer did not answer.
var ErrNoAnswer = errors.New("no answer")

// HostNetwork is the Network over a share.RoutingHost (p2p.Host.Streams
// in a node): each request opens a stream
// (negotiated optimistically, so no extra round trip), writes one
// uvarint-length-prefixed message and reads one answer. Inbound streams
// may carry several requests in sequence, as kad-dht's do.
type HostNetwork struct {
	h     share.RoutingHost
	proto string
	// Timeout bounds a whole request (default 10 s); IdleTimeout bounds
	// the wait for the next request on an inbound stream (default 1 min).
	Timeout, IdleTimeout time.Duration
	// MaxMessageSize bounds every message read (default and maximum
	// MaxMessageSize); a peer that sends more is cut off.
	MaxMessageSize int
}

// maxMessage is the read limit in effect.
func (n *HostNetwork) maxMessage() int {
	if n.MaxMessageSize <= 0 || n.MaxMessageSize > MaxMessageSize {
		return MaxMessageSize
	}
	return n.MaxMessageSize
}

// NewHostNetwork returns the DHT transport over h for protocol proto
// (usually Protocol of the host's network).
func NewHostNetwork(h share.RoutingHost, proto string) *HostNetwork {
	return &HostNetwork{h: h, proto: proto, Timeout: 10 * time.Second, IdleTimeout: time.Minute}
}

// Protocol returns the protocol ID the transport speaks.
func (n *HostNetwork) Protocol() string { return n.proto }

// Send implements Network.
func (n *HostNetwork) Send(ctx context.Context, to peer.AddrInfo, req *Message) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	if len(to.Addrs) > 0 && !n.h.Connected(to.ID) {
		n.h.AddTempAddrs(to.ID, to.Addrs)
	}
	s, err := n.h.NewStream(ctx, to.ID, n.proto)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	deadline, _ := ctx.Deadline()
	s.SetDeadline(deadline)
	err = p2p.WriteDelimited(s, req.Marshal())
	if err == nil {
		err = s.CloseWrite()
	}
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	br := bufio.NewReaderSize(s, 4096)
	b, err := p2p.ReadDelimited(br, br, n.maxMessage())
	if errors.Is(err, io.EOF) && req.Type == AddProvider {
		// kad-dht answers no ADD_PROVIDER: a peer that closes the
		// stream cleanly once it read the request took the record (one
		// that refuses resets it).
		s.Close()
		return &Message{Type: AddProvider, Key: req.Key}, nil
	}
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	s.Close()
	return UnmarshalMessage(b)
}

// Serve implements Network.
func (n *HostNetwork) Serve(h Handler) {
	if h == nil {
		n.h.RemoveHandler(n.proto)
		return
	}
	n.h.SetHandler(n.proto, func(s share.Stream) { n.serve(s, h) })
}

func (n *HostNetwork) serve(s share.Stream, h Handler) {
	from := s.RemotePeer()
	br := bufio.NewReaderSize(s, 4096)
	for {
		s.SetReadDeadline(time.Now().Add(n.IdleTimeout))
		b, err := p2p.ReadDelimited(br, br, n.maxMessage())
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.Close()
			} else {
				s.Reset()
			}
			return
		}
		req, err := UnmarshalMessage(b)
		if err != nil {
			s.Reset()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.Timeout)
		resp, err := h(ctx, Request{
			From:       peer.AddrInfo{ID: from, Addrs: n.h.Addrs(from)},
			FromServer: n.h.SupportsProtocol(from, n.proto),
			Msg:        req,
		})
		cancel()
		if err != nil || resp == nil {
			s.Reset()
			return
		}
		if req.Type == AddProvider {
			// No answer, as kad-dht: kubo reuses the stream for its next
			// request and would read an acknowledgement as that one's
			// answer. The clean close when the sender ends the stream is
			// the acknowledgement.
			continue
		}
		s.SetWriteDeadline(time.Now().Add(n.Timeout))
		if err := p2p.WriteDelimited(s, resp.Marshal()); err != nil {
			s.Reset()
			return
		}
	}
}
