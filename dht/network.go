package dht

import (
	"bufio"
	"context"
	"encoding/binary"
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

// Batcher is a Network that carries many one-way messages to a peer on
// one stream (ADD_PROVIDER: kad-dht's servers read requests in a loop
// until the stream ends and answer none of this type; share's acknowledge
// each). Provide uses it when the Network has it.
type Batcher interface {
	// SendBatch delivers msgs in order on one stream and returns nil once
	// the peer has read them all and ended the stream cleanly; answers,
	// if any, are read and dropped.
	SendBatch(ctx context.Context, to peer.AddrInfo, msgs []*Message) error
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

// batchTimeout is the deadline of a stream of n messages: Timeout, and
// 10 ms more per message for the peer's store writes.
func (n *HostNetwork) batchTimeout(msgs int) time.Duration {
	return n.Timeout + time.Duration(msgs)*10*time.Millisecond
}

// SendBatch implements Batcher: it writes msgs through a buffer, closes
// its side and reads until the peer closes its own. A reset, a timeout or
// an answer that does not decode is a failure.
func (n *HostNetwork) SendBatch(ctx context.Context, to peer.AddrInfo, msgs []*Message) error {
	ctx, cancel := context.WithTimeout(ctx, n.batchTimeout(len(msgs)))
	defer cancel()
	if len(to.Addrs) > 0 && !n.h.Connected(to.ID) {
		n.h.AddTempAddrs(to.ID, to.Addrs)
	}
	s, err := n.h.NewStream(ctx, to.ID, n.proto)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	deadline, _ := ctx.Deadline()
	s.SetDeadline(deadline)
	// Answers are drained while writing, or a peer that answers each
	// message could block on a full window while we block on ours.
	drained := make(chan error, 1)
	go func() { drained <- n.drain(s) }()
	if err := writeAll(s, msgs); err != nil {
		s.Reset()
		<-drained
		return fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	if err := <-drained; err != nil {
		s.Reset()
		return err
	}
	s.Close()
	return nil
}

// writeAll writes msgs delimited, through one buffer, and closes the
// write side.
func writeAll(s share.Stream, msgs []*Message) error {
	bw := bufio.NewWriterSize(s, 32<<10)
	var b []byte
	for _, m := range msgs {
		// One buffer for all: the length prefix, then the message.
		b = m.AppendMarshal(b[:0])
		if _, err := bw.Write(binary.AppendUvarint(bw.AvailableBuffer(), uint64(len(b)))); err != nil {
			return err
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return s.CloseWrite()
}

// drain reads answers until the peer ends the stream: nil at a clean
// end, an error if one does not decode or the stream breaks.
func (n *HostNetwork) drain(s share.Stream) error {
	br := bufio.NewReaderSize(s, 4096)
	for {
		b, err := p2p.ReadDelimited(br, br, n.maxMessage())
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNoAnswer, err)
		}
		if _, err := UnmarshalMessage(b); err != nil {
			return err
		}
	}
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
