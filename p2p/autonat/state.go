package autonat

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/observed"
	"github.com/share-p2p/share/p2p/peer"
)

// Run checks addresses in rounds, every Interval and whenever a peer
// that serves AutoNAT is identified, until ctx ends.
func (c *Client) Run(ctx context.Context) {
	sub := c.h.Subscribe()
	done := make(chan struct{})
	defer func() {
		sub.Close()
		<-done
	}()
	go func() {
		defer close(done)
		for e := range sub.Events() {
			if e.Kind == p2p.Identified && c.h.Peerstore().SupportsProtocol(e.Peer, c.req) {
				c.Kick()
			}
		}
	}()
	t := time.NewTimer(c.cfg.Interval)
	defer t.Stop()
	for {
		c.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
		t.Reset(c.cfg.Interval)
	}
}

// Kick starts a round soon.
func (c *Client) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// round asks every connected server about the candidates it has no
// fresh verdict on, one check at a time.
func (c *Client) round(ctx context.Context) {
	servers := c.servers()
	for _, s := range servers {
		for _, a := range c.candidates(s) {
			if ctx.Err() != nil {
				return
			}
			if !c.needs(a, s) {
				continue
			}
			ok, err := c.Check(ctx, s, a)
			c.record(a, s, ok, err)
		}
	}
}

// servers are the connected peers that serve AutoNAT, in random order.
func (c *Client) servers() []peer.ID {
	var out []peer.ID
	for _, p := range c.h.Peers() {
		if c.h.Peerstore().SupportsProtocol(p, c.req) {
			out = append(out, p)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// candidates are the addresses worth checking at server s: the host's
// public listen addresses, the observed ones enough peers confirm, and
// the one s itself observed. An address only one peer reports is never
// checked elsewhere: a liar could otherwise have servers dial a victim
// through us.
func (c *Client) candidates(s peer.ID) []ma.Multiaddr {
	var out []ma.Multiaddr
	out = append(out, c.h.Addrs()...)
	out = append(out, c.h.Observed().Confirmed()...)
	if a, ok := c.h.Observed().By(s); ok {
		out = append(out, a)
	}
	var keep []ma.Multiaddr
	for _, a := range ma.Unique(out) {
		if c.allowed(a) && len(keep) < maxCandidates {
			keep = append(keep, a)
		}
	}
	return keep
}

func (c *Client) allowed(a ma.Multiaddr) bool {
	ip, port, ok := observed.ThinWaist(a)
	if !ok || len(a) != 2 || port == 0 {
		return false
	}
	return observed.IsPublicIP(ip) || c.cfg.AllowPrivate && (ip.IsGlobalUnicast() || ip.IsLoopback())
}

// needs reports whether s should be asked about a: a has no verdict yet
// and s has not answered about it lately.
func (c *Client) needs(a ma.Multiaddr, s peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.addrs[string(a.Bytes())]
	if t == nil {
		return true
	}
	now := c.cfg.Now()
	c.expireLocked(t, now)
	if _, ok := t.answers[s]; ok {
		return false
	}
	if at, ok := t.asked[s]; ok && now.Sub(at) < c.cfg.ResultTTL {
		return false
	}
	ok, fail := t.tally()
	return c.settled(ok, fail) == 0
}

func (c *Client) expireLocked(t *tracked, now time.Time) {
	for p, an := range t.answers {
		if now.Sub(an.at) > c.cfg.ResultTTL {
			delete(t.answers, p)
		}
	}
}

func (t *tracked) tally() (ok, fail int) {
	for _, an := range t.answers {
		if an.ok {
			ok++
		} else {
			fail++
		}
	}
	return ok, fail
}

// settled is 1 (reachable), -1 (unreachable) or 0 (not yet known).
func (c *Client) settled(ok, fail int) int {
	n := c.cfg.Confirmations
	switch {
	case ok >= n && ok > fail:
		return 1
	case fail >= n && fail > ok:
		return -1
	}
	return 0
}

// record keeps the outcome of a check.
func (c *Client) record(a ma.Multiaddr, s peer.ID, ok bool, err error) {
	c.cfg.OnResult(outcomeName(ok, err))
	if err != nil {
		c.log.Debug("autonat: no verdict", "server", s.ShortString(), "addr", a, "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	t := c.track(a, now)
	if t == nil {
		return
	}
	if err != nil {
		if len(t.asked) >= maxResultsPerAddr {
			clear(t.asked) // forgetting means asking some again: harmless
		}
		t.asked[s] = now
		return
	}
	if len(t.answers) >= maxResultsPerAddr {
		dropOldest(t.answers)
	}
	t.answers[s] = answer{ok: ok, at: now}
}

// track returns a's entry, made if needed; when maxTracked addresses are
// tracked, one without live answers makes room, or nil is returned.
func (c *Client) track(a ma.Multiaddr, now time.Time) *tracked {
	k := string(a.Bytes())
	if t := c.addrs[k]; t != nil {
		return t
	}
	if len(c.addrs) >= maxTracked {
		for k2, t := range c.addrs {
			if c.expireLocked(t, now); len(t.answers) == 0 {
				delete(c.addrs, k2)
				break
			}
		}
		if len(c.addrs) >= maxTracked {
			return nil
		}
	}
	t := &tracked{addr: a, answers: map[peer.ID]answer{}, asked: map[peer.ID]time.Time{}}
	c.addrs[k] = t
	return t
}

func dropOldest(m map[peer.ID]answer) {
	var oldest peer.ID
	var at time.Time
	for p, an := range m {
		if at.IsZero() || an.at.Before(at) {
			oldest, at = p, an.at
		}
	}
	delete(m, oldest)
}

func outcomeName(ok bool, err error) string {
	switch {
	case err == nil && ok:
		return "reachable"
	case err == nil:
		return "unreachable"
	case errors.Is(err, ErrRefused):
		return "refused"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrNoDialBack):
		return "no_dial_back"
	}
	return "error"
}

// Status returns what the client concludes now: public if some address
// is reachable, private if none is and some is not, unknown otherwise.
func (c *Client) Status() Status {
	c.mu.Lock()
	now := c.cfg.Now()
	var st Status
	for _, t := range c.addrs {
		c.expireLocked(t, now)
		switch c.settled(t.tally()) {
		case 1:
			st.Reachable = append(st.Reachable, t.addr)
		case -1:
			st.Unreachable = append(st.Unreachable, t.addr)
		}
	}
	c.mu.Unlock()
	for _, l := range [][]ma.Multiaddr{st.Reachable, st.Unreachable} {
		sort.Slice(l, func(i, j int) bool { return l[i].Compare(l[j]) < 0 })
	}
	switch {
	case len(st.Reachable) > 0:
		st.Reachability = Public
	case len(st.Unreachable) > 0:
		st.Reachability = Private
	}
	return st
}

// PubliclyReachable reports whether some address of the host is
// confirmed reachable: the test a relay service starts on.
func (c *Client) PubliclyReachable() bool { return c.Status().Reachability == Public }
