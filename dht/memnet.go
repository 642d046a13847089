package dht

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// Fault is a misbehaviour a MemNetwork injects for a peer.
type Fault int

// The faults.
const (
	// Healthy: the peer answers normally.
	Healthy Fault = iota
	// Dead: requests to the peer fail at once (connection refused).
	Dead
	// Blackhole: requests to the peer hang until their context ends.
	Blackhole
	// Garbage: the peer answers bytes that do not decode.
	Garbage
	// Liar: the peer answers well-formed messages listing made-up peers.
	Liar
)

// MemNetwork is an in-memory network for DHT simulations: no sockets, no
// TLS, only message encoding, decoding and handlers, so thousands of DHT
// nodes fit in one process. Each node gets an endpoint per protocol;
// endpoints of different protocols never reach each other.
type MemNetwork struct {
	// Latency delays every request (one-way, so a request costs twice).
	Latency time.Duration

	mu     sync.RWMutex
	nodes  map[memAddr]*MemEndpoint
	faults map[peer.ID]Fault

	messages atomic.Int64
}

type memAddr struct {
	proto string
	id    peer.ID
}

// NewMemNetwork returns an empty in-memory network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{nodes: map[memAddr]*MemEndpoint{}, faults: map[peer.ID]Fault{}}
}

// Endpoint returns the transport of the node self for protocol proto.
func (n *MemNetwork) Endpoint(proto string, self peer.AddrInfo) *MemEndpoint {
	return &MemEndpoint{n: n, proto: proto, self: self}
}

// SetFault makes a peer misbehave (Healthy restores it).
func (n *MemNetwork) SetFault(id peer.ID, f Fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f == Healthy {
		delete(n.faults, id)
	} else {
		n.faults[id] = f
	}
}

// Messages returns the number of requests sent so far.
func (n *MemNetwork) Messages() int64 { return n.messages.Load() }

// MemEndpoint is one node's Network on a MemNetwork.
type MemEndpoint struct {
	n     *MemNetwork
	proto string
	self  peer.AddrInfo

	mu sync.RWMutex
	h  Handler
}

// Serve implements Network.
func (e *MemEndpoint) Serve(h Handler) {
	e.mu.Lock()
	e.h = h
	e.mu.Unlock()
	a := memAddr{e.proto, e.self.ID}
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if h == nil {
		if e.n.nodes[a] == e {
			delete(e.n.nodes, a)
		}
		return
	}
	e.n.nodes[a] = e
}

func (e *MemEndpoint) handler() Handler {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.h
}

// Send implements Network.
func (e *MemEndpoint) Send(ctx context.Context, to peer.AddrInfo, req *Message) (*Message, error) {
	e.n.messages.Add(1)
	e.n.mu.RLock()
	dst := e.n.nodes[memAddr{e.proto, to.ID}]
	fault := e.n.faults[to.ID]
	_, fromServer := e.n.nodes[memAddr{e.proto, e.self.ID}]
	e.n.mu.RUnlock()
	if err := e.n.wait(ctx); err != nil {
		return nil, err
	}
	var h Handler
	if dst != nil {
		h = dst.handler()
	}
	switch {
	case h == nil:
		return nil, fmt.Errorf("%w: %s does not serve %s", ErrNoAnswer, to.ID, e.proto)
	case fault == Dead:
		return nil, fmt.Errorf("%w: %s: connection refused", ErrNoAnswer, to.ID)
	case fault == Blackhole:
		<-ctx.Done()
		return nil, fmt.Errorf("%w: %s: %v", ErrNoAnswer, to.ID, ctx.Err())
	}
	// Encode and decode both ways, as a real transport does: nodes share
	// no memory and the decoder sees every message.
	in, err := UnmarshalMessage(req.Marshal())
	if err != nil {
		return nil, err
	}
	resp, err := h(ctx, Request{From: e.self, FromServer: fromServer, Msg: in})
	if err != nil || resp == nil {
		return nil, fmt.Errorf("%w: %s reset the stream: %v", ErrNoAnswer, to.ID, err)
	}
	b := resp.Marshal()
	switch fault {
	case Garbage:
		b = make([]byte, 64+mrand.IntN(512))
		rand.Read(b)
	case Liar:
		lie := &Message{Type: resp.Type, Key: resp.Key}
		for range 20 {
			lie.CloserPeers = append(lie.CloserPeers, Peer{ID: randomID(), Addrs: to.Addrs})
		}
		b = lie.Marshal()
	}
	if err := e.n.wait(ctx); err != nil {
		return nil, err
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: answer of %d bytes", ErrBadMessage, len(b))
	}
	return UnmarshalMessage(b)
}

func (n *MemNetwork) wait(ctx context.Context) error {
	if n.Latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(n.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrNoAnswer, ctx.Err())
	}
}

// randomID returns a well-formed PeerID of no real key.
func randomID() peer.ID {
	pub := make([]byte, 32)
	rand.Read(pub)
	id, _ := peer.IDFromPublicKey(pub)
	return id
}
