package node

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync/atomic"

	"github.com/share-p2p/share/bitswap"
	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// bitswapWire is Bitswap as the exchange's want wire: the sessions of the
// one fetcher ask kubo peers over it, beside share peers over the share
// protocol.
type bitswapWire struct {
	b *bitswap.Bitswap
	h p2p.Streams
	// seq orders wants: kubo serves the highest priority first, and the
	// scheduler sends wants in the order it wants blocks.
	seq atomic.Uint32
}

var _ exchange.WantWire = (*bitswapWire)(nil)

func (w *bitswapWire) Protocol() string { return bitswap.Protocol120 }

// Speaks reports whether identify says p speaks any Bitswap version.
func (w *bitswapWire) Speaks(p peer.ID) bool {
	return slices.ContainsFunc(bitswap.Protocols, func(proto string) bool { return w.h.SupportsProtocol(p, proto) })
}

// errNoHave: Bitswap before 1.2.0 takes a want-have for a want-block.
var errNoHave = errors.New("peer's Bitswap is older than 1.2.0: it cannot say whether it has a block")

// Send sends wants as one Bitswap message: block wants and have wants
// ask for DONT_HAVE, so that a peer that lacks a block says so.
func (w *bitswapWire) Send(ctx context.Context, p peer.ID, ws exchange.Wants) error {
	if len(ws.Haves) > 0 && !w.h.SupportsProtocol(p, bitswap.Protocol120) {
		return errNoHave
	}
	m := &bitswap.Message{Wants: make([]bitswap.Entry, 0, len(ws.Blocks)+len(ws.Haves)+len(ws.Cancels))}
	for _, c := range ws.Cancels {
		m.Wants = append(m.Wants, bitswap.Entry{Cid: c, Cancel: true})
	}
	for _, c := range ws.Blocks {
		m.Wants = append(m.Wants, bitswap.Entry{Cid: c, Priority: w.priority(), Type: bitswap.WantBlock, SendDontHave: true})
	}
	for _, c := range ws.Haves {
		m.Wants = append(m.Wants, bitswap.Entry{Cid: c, Priority: w.priority(), Type: bitswap.WantHave, SendDontHave: true})
	}
	return w.b.Send(ctx, p, m)
}

// priority is the next want's: lower than every earlier one's (wrapping
// after a billion wants).
func (w *bitswapWire) priority() int32 {
	return math.MaxInt32 - int32(w.seq.Add(1)%(1<<30))
}

func (w *bitswapWire) CutOff(p peer.ID, err error) { w.b.CutOff(p, err) }

// receive hands the blocks and presences p sent to the exchange.
func (w *bitswapWire) receive(x *exchange.Exchange) func(p peer.ID, m *bitswap.Message) {
	return func(p peer.ID, m *bitswap.Message) {
		for _, pr := range m.Presences {
			x.WirePresence(p, pr.Cid, !pr.DontHave)
		}
		for _, b := range m.Blocks {
			x.WireBlock(p, b.Prefix, b.Data)
		}
	}
}

// errGone: the connection to a Bitswap peer closed.
var errGone = errors.New("disconnected")

// watchLost tells x of every peer that disconnects (kubo stopped, or a
// peer cut off for bad messages), so that its sessions stop waiting for
// that peer's Bitswap answers, until ctx ends.
func (w *bitswapWire) watchLost(ctx context.Context, h *p2p.Host, x *exchange.Exchange) {
	sub := h.Subscribe()
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Events():
			if !ok {
				return
			}
			if e.Kind == p2p.Disconnected {
				x.WireLost(e.Peer, errGone)
			}
		}
	}
}
