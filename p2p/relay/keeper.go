package relay

import (
	"context"
	"time"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// KeepConfig says which reservations Client.Keep keeps.
type KeepConfig struct {
	// Static relays are tried first, in order (dialled at their
	// addresses).
	Static []peer.AddrInfo
	// Candidates, if set, returns more relays to try: connected peers
	// that serve the hop protocol, say.
	Candidates func() []peer.ID
	// Want is how many reservations to hold (default 2).
	Want int
	// Enabled reports whether reservations are wanted now: for "auto",
	// whether the node is behind a NAT. Nil means always. When it turns
	// false the reservations are forgotten (they expire at the relays).
	Enabled func() bool
	// Interval is how often Keep looks for relays while it holds fewer
	// than Want (default 1 min).
	Interval time.Duration
	// Retry is how long a relay that refused or failed is left alone
	// (default 5 min).
	Retry time.Duration
}

func (k KeepConfig) withDefaults() KeepConfig {
	if k.Want <= 0 {
		k.Want = 2
	}
	if k.Interval <= 0 {
		k.Interval = time.Minute
	}
	if k.Retry <= 0 {
		k.Retry = 5 * time.Minute
	}
	return k
}

// renewSlack is how long before expiry a reservation is renewed, at most:
// a short reservation is renewed halfway through its life.
const renewSlack = 2 * time.Minute

// renewAt is when a reservation should be renewed.
func (h *Held) renewAt() time.Time {
	life := h.Expire.Sub(h.granted)
	return h.Expire.Add(-min(renewSlack, life/2))
}

// maxTriesPerRound bounds the new relays tried in one round, so that a
// long candidate list of dead peers does not stall renewals.
const maxTriesPerRound = 4

// Keep holds cfg.Want reservations until ctx ends: it reserves on static
// relays and candidates, renews each reservation before it expires, and
// replaces a relay that disconnects or refuses.
func (c *Client) Keep(ctx context.Context, cfg KeepConfig) {
	cfg = cfg.withDefaults()
	sub := c.h.Subscribe()
	defer sub.Close()
	failed := map[peer.ID]time.Time{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case e, ok := <-sub.Events():
			if !ok {
				return
			}
			if !c.affects(e, cfg.Want) {
				continue
			}
		}
		if cfg.Enabled == nil || cfg.Enabled() {
			c.renew(ctx, failed, cfg.Retry)
			c.fill(ctx, cfg, failed)
		} else {
			for _, h := range c.Reservations() {
				c.Drop(h.Relay)
			}
		}
		timer.Reset(time.Until(c.nextRound(cfg)))
	}
}

// affects reports whether an event calls for a round: a relay held
// disconnected, or a peer identified while reservations are missing.
func (c *Client) affects(e p2p.Event, want int) bool {
	switch e.Kind {
	case p2p.Disconnected:
		c.mu.Lock()
		_, ok := c.held[e.Peer]
		c.mu.Unlock()
		return ok
	case p2p.Identified:
		return len(c.Reservations()) < want && c.h.Peerstore().SupportsProtocol(e.Peer, HopProtocol)
	}
	return false
}

// nextRound is when the next round is due: the first renewal, or an
// Interval from now while reservations are missing.
func (c *Client) nextRound(cfg KeepConfig) time.Time {
	held := c.Reservations()
	next := time.Now().Add(cfg.Interval)
	if len(held) >= cfg.Want {
		next = time.Now().Add(24 * time.Hour)
	}
	for _, h := range held {
		if at := h.renewAt(); at.Before(next) {
			next = at
		}
	}
	return next
}

// renew renews the reservations due, and drops those whose relay is gone
// or refuses.
func (c *Client) renew(ctx context.Context, failed map[peer.ID]time.Time, retry time.Duration) {
	now := time.Now()
	for _, h := range c.Reservations() {
		if !c.h.Connected(h.Relay) {
			c.log.Debug("relay disconnected: reservation lost", "relay", h.Relay.ShortString())
			c.Drop(h.Relay)
			continue
		}
		if now.Before(h.renewAt()) {
			continue
		}
		if _, err := c.reserveWithin(ctx, h.Relay); err != nil {
			c.log.Debug("reservation renewal failed", "relay", h.Relay.ShortString(), "err", err)
			c.Drop(h.Relay)
			failed[h.Relay] = now.Add(retry)
		}
	}
	var expired []peer.ID // without renewal (Reservations skips them)
	c.mu.Lock()
	for id, h := range c.held {
		if !now.Before(h.Expire) {
			expired = append(expired, id)
		}
	}
	c.mu.Unlock()
	for _, id := range expired {
		c.Drop(id)
	}
}

// fill reserves on new relays until Want are held.
func (c *Client) fill(ctx context.Context, cfg KeepConfig, failed map[peer.ID]time.Time) {
	now := time.Now()
	for id, until := range failed {
		if !now.Before(until) {
			delete(failed, id)
		}
	}
	tries := 0
	for _, ai := range c.candidates(cfg) {
		if len(c.Reservations()) >= cfg.Want || tries >= maxTriesPerRound || ctx.Err() != nil {
			return
		}
		if _, bad := failed[ai.ID]; bad || c.holds(ai.ID) || ai.ID == c.h.ID() {
			continue
		}
		tries++
		if err := c.reserveOn(ctx, ai); err != nil {
			c.log.Debug("reservation failed", "relay", ai.ID.ShortString(), "err", err)
			failed[ai.ID] = now.Add(cfg.Retry)
			continue
		}
		c.log.Info("reserved a slot on a relay", "relay", ai.ID.ShortString())
	}
}

// candidates lists the static relays, then cfg.Candidates.
func (c *Client) candidates(cfg KeepConfig) []peer.AddrInfo {
	out := append([]peer.AddrInfo(nil), cfg.Static...)
	if cfg.Candidates != nil {
		for _, id := range cfg.Candidates() {
			out = append(out, peer.AddrInfo{ID: id})
		}
	}
	return out
}

// reserveOn connects to a relay and reserves on it, within streamTimeout.
func (c *Client) reserveOn(ctx context.Context, ai peer.AddrInfo) error {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	if err := c.h.Connect(ctx, ai); err != nil {
		return err
	}
	_, err := c.Reserve(ctx, ai.ID)
	return err
}

func (c *Client) reserveWithin(ctx context.Context, relay peer.ID) (*Held, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	return c.Reserve(ctx, relay)
}
