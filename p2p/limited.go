package p2p

import (
	"context"
	"errors"
	"fmt"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/peer"
)

// Limited connections. A relay with limits (libp2p's defaults, kubo's:
// 2 min and 128 KiB a circuit) cuts its circuits long before a file has
// crossed, so, as in go-libp2p, Host.NewStream opens streams on a limited
// connection only for protocols that opt in (ping; identify and hole
// punching open theirs on the connection itself): any other stream waits
// for the direct connection a hole punch may bring, and fails with
// ErrLimitedConn when none comes. A relay without limits (Relay.CircuitBytes
// and Relay.CircuitDuration 0) gives connections that are not limited,
// which carry everything.

// ErrLimitedConn means the only connection to a peer runs through a relay
// that limits data, and no direct one could be made. The errors wrapping
// it are of kind errs.Unreachable and name the peer.
var ErrLimitedConn = errors.New("only reachable through a relay that limits data")

// limitedErr is ErrLimitedConn for peer p.
func limitedErr(p peer.ID) error {
	return errs.E(errs.Unreachable, fmt.Errorf("peer %s is %w", p.ShortString(), ErrLimitedConn))
}

type limitedKey struct{}

// WithLimitedConn returns a context under which Host.NewStream may open
// its stream on a limited connection: for protocols that carry a few
// bytes (go-libp2p's network.WithAllowLimitedConn).
func WithLimitedConn(ctx context.Context) context.Context {
	return context.WithValue(ctx, limitedKey{}, true)
}

func limitedAllowed(ctx context.Context) bool {
	ok, _ := ctx.Value(limitedKey{}).(bool)
	return ok
}

// DirectWaiter waits for a relayed connection to give way to a direct one:
// the hole puncher (p2p/dcutr) is one.
type DirectWaiter interface {
	// WaitDirect returns the direct connection to c's peer once there is
	// one, or nil once none will come of c (no hole punch runs over it,
	// or it failed). It returns an error only when ctx ends first.
	WaitDirect(ctx context.Context, c *Conn) (*Conn, error)
}

// SetDirectWaiter makes streams that may not use a limited connection
// wait for w's verdict (nil: they fail at once).
func (h *Host) SetDirectWaiter(w DirectWaiter) {
	h.hmu.Lock()
	h.directWaiter = w
	h.hmu.Unlock()
}

func (h *Host) waiter() DirectWaiter {
	h.hmu.RLock()
	defer h.hmu.RUnlock()
	return h.directWaiter
}

// DataConn connects to id if needed and returns a connection that may
// carry data: a direct one, or a relayed one that is not limited. Over a
// limited connection it waits for a hole punch, and fails with an error of
// ErrLimitedConn (kind errs.Unreachable) when none succeeds.
func (h *Host) DataConn(ctx context.Context, id peer.ID) (*Conn, error) {
	c, err := h.connect(ctx, peer.AddrInfo{ID: id})
	if err != nil {
		return nil, err
	}
	return h.dataConn(ctx, c)
}

// dataConn returns c, or the direct connection that replaces c when c is
// limited.
func (h *Host) dataConn(ctx context.Context, c *Conn) (*Conn, error) {
	if !c.Limited() {
		return c, nil
	}
	p := c.RemotePeer()
	if d := h.DirectConn(p); d != nil {
		return d, nil
	}
	if w := h.waiter(); w != nil {
		d, err := w.WaitDirect(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("peer %s: waiting for a hole punch: %w", p.ShortString(), err)
		}
		if d != nil {
			return d, nil
		}
	}
	if d := h.bestConn(p); d != nil && !d.Limited() {
		return d, nil // a direct (or unlimited) connection came meanwhile
	}
	return nil, limitedErr(p)
}
