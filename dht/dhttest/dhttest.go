// Package dhttest is test support for package dht: Network, an in-memory
// dht.Network of message handlers with injectable faults, on which DHT
// simulations run thousands of nodes in one process. Production code does
// not import it.
package dhttest

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/p2p/peer"
)

// Fault is a misbehaviour a Network injects for a peer.
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

// Network is an in-memory network for DHT simulations: no sockets, no
// TLS, only message encoding, decoding and handlers, so thousands of DHT
// nodes fit in one process. Each node gets an endpoint per protocol;
// endpoints of different protocols never reach each other.
type Network struct {
	// Latency delays every request (one-way, so a request costs twice).
	Latency time.Duration

	mu     sync.RWMutex
	nodes  map[memAddr]*Endpoint
	faults map[peer.ID]Fault

	messages, streams atomic.Int64
}

type memAddr struct {
	proto string
	id    peer.ID
}

// NewNetwork returns an empty in-memory network.
func NewNetwork() *Network {
	return &Network{nodes: map[memAddr]*Endpoint{}, faults: map[peer.ID]Fault{}}
}

// Endpoint returns the transport of the node self for protocol proto.
func (n *Network) Endpoint(proto string, self peer.AddrInfo) *Endpoint {
	return &Endpoint{n: n, proto: proto, self: self}
}

// SetFault makes a peer misbehave (Healthy restores it).
func (n *Network) SetFault(id peer.ID, f Fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f == Healthy {
		delete(n.faults, id)
	} else {
		n.faults[id] = f
	}
}

// Messages returns the number of requests sent so far (each message of
// a batch counts).
func (n *Network) Messages() int64 { return n.messages.Load() }

// Streams returns the number of streams opened so far: one per Send, one
// per SendBatch.
func (n *Network) Streams() int64 { return n.streams.Load() }

// Endpoint is one node's dht.Network on a Network.
type Endpoint struct {
	n     *Network
	proto string
	self  peer.AddrInfo

	mu sync.RWMutex
	h  dht.Handler
}

// Serve implements dht.Network.
func (e *Endpoint) Serve(h dht.Handler) {
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

func (e *Endpoint) handler() dht.Handler {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.h
}

// Send implements dht.Network.
func (e *Endpoint) Send(ctx context.Context, to peer.AddrInfo, req *dht.Message) (*dht.Message, error) {
	e.n.messages.Add(1)
	h, fault, fromServer, err := e.open(ctx, to)
	if err != nil {
		return nil, err
	}
	// Encode and decode both ways, as a real transport does: nodes share
	// no memory and the decoder sees every message.
	in, err := dht.UnmarshalMessage(req.Marshal())
	if err != nil {
		return nil, err
	}
	resp, err := h(ctx, dht.Request{From: e.self, FromServer: fromServer, Msg: in})
	if err != nil || resp == nil {
		return nil, fmt.Errorf("%w: %s reset the stream: %v", dht.ErrNoAnswer, to.ID, err)
	}
	b := resp.Marshal()
	switch fault {
	case Garbage:
		b = make([]byte, 64+mrand.IntN(512))
		rand.Read(b)
	case Liar:
		lie := &dht.Message{Type: resp.Type, Key: resp.Key}
		for range 20 {
			lie.CloserPeers = append(lie.CloserPeers, dht.Peer{ID: randomID(), Addrs: to.Addrs})
		}
		b = lie.Marshal()
	}
	if err := e.n.wait(ctx); err != nil {
		return nil, err
	}
	if len(b) > dht.MaxMessageSize {
		return nil, fmt.Errorf("%w: answer of %d bytes", dht.ErrBadMessage, len(b))
	}
	return dht.UnmarshalMessage(b)
}

// open is the first half of a round trip to a peer: it counts the
// stream, waits the one-way latency and returns the peer's handler and
// fault, or the error of a peer that cannot be reached.
func (e *Endpoint) open(ctx context.Context, to peer.AddrInfo) (dht.Handler, Fault, bool, error) {
	e.n.streams.Add(1)
	e.n.mu.RLock()
	dst := e.n.nodes[memAddr{e.proto, to.ID}]
	fault := e.n.faults[to.ID]
	_, fromServer := e.n.nodes[memAddr{e.proto, e.self.ID}]
	e.n.mu.RUnlock()
	if err := e.n.wait(ctx); err != nil {
		return nil, 0, false, err
	}
	var h dht.Handler
	if dst != nil {
		h = dst.handler()
	}
	switch {
	case h == nil:
		return nil, 0, false, fmt.Errorf("%w: %s does not serve %s", dht.ErrNoAnswer, to.ID, e.proto)
	case fault == Dead:
		return nil, 0, false, fmt.Errorf("%w: %s: connection refused", dht.ErrNoAnswer, to.ID)
	case fault == Blackhole:
		<-ctx.Done()
		return nil, 0, false, fmt.Errorf("%w: %s: %v", dht.ErrNoAnswer, to.ID, ctx.Err())
	}
	return h, fault, fromServer, nil
}

// SendBatch implements dht.Batcher: one stream, so one round trip of
// latency for all of msgs (the handler sees each, decoded from its
// bytes); a Garbage peer's answers do not decode.
func (e *Endpoint) SendBatch(ctx context.Context, to peer.AddrInfo, msgs []*dht.Message) error {
	e.n.messages.Add(int64(len(msgs)))
	h, fault, fromServer, err := e.open(ctx, to)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		in, err := dht.UnmarshalMessage(m.Marshal())
		if err != nil {
			return err
		}
		if resp, err := h(ctx, dht.Request{From: e.self, FromServer: fromServer, Msg: in}); err != nil || resp == nil {
			return fmt.Errorf("%w: %s reset the stream: %v", dht.ErrNoAnswer, to.ID, err)
		}
	}
	if fault == Garbage {
		return fmt.Errorf("%w: answer from %s does not decode", dht.ErrBadMessage, to.ID)
	}
	return e.n.wait(ctx)
}

func (n *Network) wait(ctx context.Context) error {
	if n.Latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(n.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", dht.ErrNoAnswer, ctx.Err())
	}
}

// randomID returns a well-formed PeerID of no real key.
func randomID() peer.ID {
	pub := make([]byte, 32)
	rand.Read(pub)
	id, _ := peer.IDFromPublicKey(pub)
	return id
}
