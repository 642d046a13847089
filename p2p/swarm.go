package p2p

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/peer"
)

var errDuplicate = errors.New("duplicate connection")

// dialCall is a dial in flight; concurrent Connects to the same peer wait
// for it instead of dialling again.
type dialCall struct {
	done chan struct{}
	conn *Conn
	err  error
}

// Connect makes sure the host has a connection to ai.ID, dialling ai.Addrs
// and the addresses in the peerstore (in that order) if it has none. The
// handshake fails unless the remote proves to be ai.ID.
//
// Connect returns once the peer has identified itself: a peer of another
// network is refused (ErrOtherNetwork) and the connection closed.
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var c *Conn
		if c, err = h.connect(ctx, ai); err != nil {
			return err
		}
		select {
		case <-c.identified:
		case <-ctx.Done():
			return ctx.Err()
		}
		if errors.Is(c.identifyErr, ErrOtherNetwork) {
			return fmt.Errorf("connect %s: %w", ai.ID, c.identifyErr)
		}
		if c.identifyErr == nil || !c.IsClosed() || c.closedLocally.Load() {
			return nil // identified, or since closed here (trimmed, say)
		}
		// Closed during identify: the loser of a simultaneous dial (the
		// next attempt finds the winner), or a peer that found us on
		// another network before we found out ourselves.
		err = fmt.Errorf("connect %s: %w: closed by the peer during identify (%v); is it on another network?", ai.ID, ErrNotConnected, c.identifyErr)
	}
	return err
}

// ConnectAddr connects to a dial target "/ip4/.../tcp/N/p2p/ID".
func (h *Host) ConnectAddr(ctx context.Context, target ma.Multiaddr) (peer.ID, error) {
	ai, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		return "", err
	}
	return ai.ID, h.Connect(ctx, ai)
}

func (h *Host) connect(ctx context.Context, ai peer.AddrInfo) (*Conn, error) {
	if ai.ID == h.id {
		return nil, ErrSelfDial
	}
	if err := ai.ID.Validate(); err != nil {
		return nil, err
	}
	if len(ai.Addrs) > 0 {
		h.ps.AddAddrs(ai.ID, ai.Addrs, TempAddrTTL)
	}
	// A dial that lost a simultaneous-dial collapse may find the winning
	// connection not registered yet (its TLS server side finishes last) or
	// already closed; dial again then: the next attempt finds or makes one.
	// Ten hosts dialling each other at once on two loaded cores lost
	// three collapses in a row once (TestTenHosts in CI): five attempts.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var c *Conn
		if c, err = h.connectOnce(ctx, ai); c != nil || err != nil {
			return c, err
		}
	}
	return nil, fmt.Errorf("connect %s: %w", ai.ID, ErrNotConnected)
}

func (h *Host) connectOnce(ctx context.Context, ai peer.AddrInfo) (*Conn, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if c := h.bestConnLocked(ai.ID); c != nil && !(c.Relayed() && h.hasDirect(ai.Addrs)) {
		h.mu.Unlock()
		return c, nil
	}
	call := h.dials[ai.ID]
	joined := call != nil
	if call == nil {
		call = &dialCall{done: make(chan struct{})}
		h.dials[ai.ID] = call
		h.wg.Add(1)
		go h.dial(call, ai)
	}
	h.mu.Unlock()
	select {
	case <-call.done:
		if call.err != nil {
			if c := h.bestConn(ai.ID); c != nil {
				return c, nil // the direct dial failed; the relayed connection stays
			}
			if joined && len(ai.Addrs) > 0 {
				// The dial we joined did not have our addresses (a relay
				// address the caller was given, say): dial again with them.
				return nil, nil
			}
			return nil, call.err
		}
		return h.bestConn(ai.ID), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dial tries the peer's addresses in order. It runs under the host's
// context, bounded by HandshakeTimeout per address, so that a caller
// giving up does not abort a dial other callers wait for.
func (h *Host) dial(call *dialCall, ai peer.AddrInfo) {
	defer h.wg.Done()
	c, err := h.dialAddrs(ai)
	if err == nil {
		if err = h.addConn(c); errors.Is(err, errDuplicate) {
			err = nil // the peer's connection won the collapse
		}
	}
	call.conn, call.err = c, err
	h.mu.Lock()
	delete(h.dials, ai.ID)
	h.mu.Unlock()
	close(call.done)
}

// dialStagger is the delay before the next address is tried while earlier
// dials are still in progress.
const dialStagger = 250 * time.Millisecond

type dialResult struct {
	conn *Conn
	err  error
}

// dialAddrs dials the peer's addresses, starting one more every
// dialStagger (or as soon as one fails) until one succeeds: a dead address
// costs a quarter second, not a full timeout.
// dialOrder is the order in which a dial tries a peer's addresses, the
// dialable ones: those the caller gave first (a circuit address given
// explicitly is not tried after every known direct address, which are
// often dead from here: 250 ms each), then those the peerstore knows;
// within each, direct before relayed.
func dialOrder(given, known []ma.Multiaddr, canDial func(ma.Multiaddr) bool) []ma.Multiaddr {
	var out []ma.Multiaddr
	seen := make(map[string]bool)
	for _, set := range [][]ma.Multiaddr{given, known} {
		var direct, relayed []ma.Multiaddr
		for _, a := range set {
			k := string(a.Bytes())
			if seen[k] || !canDial(a) {
				continue
			}
			seen[k] = true
			if IsRelayAddr(a) {
				relayed = append(relayed, a) // relays last: direct is better
			} else {
				direct = append(direct, a)
			}
		}
		out = append(append(out, direct...), relayed...)
	}
	return out
}

func (h *Host) dialAddrs(ai peer.AddrInfo) (*Conn, error) {
	addrs := dialOrder(ai.Addrs, h.ps.Addrs(ai.ID), h.canDial)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("connect %s: %w", ai.ID, ErrNoAddresses)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	results := make(chan dialResult, len(addrs))
	next, pending := 0, 0
	start := func() {
		a := addrs[next]
		next++
		pending++
		go func() {
			c, err := h.dialOne(ctx, a, ai.ID)
			results <- dialResult{c, err}
		}()
	}
	stagger := time.NewTimer(dialStagger)
	defer stagger.Stop()
	start()
	var errs []error
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				if pending > 0 {
					h.wg.Add(1)
					go h.discardDials(results, pending)
				}
				return r.conn, nil
			}
			errs = append(errs, r.err)
			if next < len(addrs) {
				start()
				stagger.Reset(dialStagger)
			}
		case <-stagger.C:
			if next < len(addrs) {
				start()
				stagger.Reset(dialStagger)
			}
		}
	}
	return nil, fmt.Errorf("connect %s: %w", ai.ID, errors.Join(errs...))
}

// discardDials closes the connections of dials that finished after another
// one won.
func (h *Host) discardDials(results <-chan dialResult, n int) {
	defer h.wg.Done()
	for i := 0; i < n; i++ {
		if r := <-results; r.conn != nil {
			r.conn.closeWithReason("another address connected first")
		}
	}
}

func (h *Host) dialOne(ctx context.Context, a ma.Multiaddr, id peer.ID) (*Conn, error) {
	h.mu.Lock()
	full := h.nOut >= h.cfg.Limits.MaxOutbound
	h.mu.Unlock()
	if full {
		return nil, ErrConnLimit
	}
	dctx, cancel := context.WithTimeout(ctx, h.cfg.HandshakeTimeout)
	raw, err := h.dialRaw(dctx, a, id)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	c, err := h.upgrade(ctx, raw, Outbound, id)
	if err != nil {
		h.log.Debug("outbound handshake failed", "peer", id.ShortString(), "addr", a, "err", err)
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	return c, nil
}

// dialer returns the PeerID of the side that dialled c.
func (h *Host) dialer(c *Conn) peer.ID {
	if c.dir == Outbound {
		return h.id
	}
	return c.remote
}

// collapses reports whether duplicate connections to p are collapsed:
// unless identify said p is not share (kubo, any go-libp2p peer), which
// keeps every connection and opens streams on any of them. Closing one
// under such a peer resets the streams it opened there (Bitswap replies,
// whose blocks boxo never sends again).
func (h *Host) collapses(p peer.ID) bool {
	agent := h.ps.AgentVersion(p)
	return agent == "" || strings.HasPrefix(agent, "share/")
}

// addConn registers a new connection, collapsing duplicates: between
// connections dialled by different sides, both sides keep the one dialled
// by the smaller PeerID; between two dialled by the same side, the dialler
// keeps the older one and the listener waits for it to close the other
// (see collapses for peers that are not share); a direct connection
// always wins over a relayed one. It
// returns nil if c was kept.
func (h *Host) addConn(c *Conn) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.closeWithReason("host closing")
		return ErrClosed
	}
	if (c.dir == Inbound && h.nIn >= h.cfg.Limits.MaxInbound) ||
		(c.dir == Outbound && h.nOut >= h.cfg.Limits.MaxOutbound) {
		h.mu.Unlock()
		c.closeWithReason("connection limit")
		return ErrConnLimit
	}
	existing := h.conns[c.remote]
	var loser *Conn
	collapse := h.collapses(c.remote)
	for _, old := range existing {
		if old.IsClosed() {
			continue
		}
		dOld, dNew := h.dialer(old), h.dialer(c)
		switch {
		case old.Relayed() != c.Relayed(): // circuit relay: a direct connection wins
			loser = old
			if c.Relayed() {
				loser = c
			}
		case !collapse:
		case dOld != dNew && dNew < dOld:
			loser = old
		case dOld != dNew:
			loser = c
		case c.dir == Outbound:
			loser = c
		}
		if loser != nil {
			break
		}
	}
	if loser == c {
		h.mu.Unlock()
		c.closeWithReason("duplicate connection")
		return errDuplicate
	}
	first := len(existing) == 0
	h.conns[c.remote] = append([]*Conn{c}, existing...)
	if c.dir == Inbound {
		h.nIn++
	} else {
		h.nOut++
	}
	over := h.nIn+h.nOut > h.cfg.Limits.HighWater
	h.wg.Add(2)
	h.mu.Unlock()

	switch {
	case loser != nil && loser.Relayed() && !c.Relayed():
		h.wg.Add(1)
		go h.closeWhenIdle(loser)
	case loser != nil:
		loser.closeWithReason("duplicate connection")
	}
	c.log.Debug("connected")
	h.ps.AddAddrs(c.remote, []ma.Multiaddr{c.raddr}, ConnectedAddrTTL)
	h.ps.UpdateAddrs(c.remote, TempAddrTTL, ConnectedAddrTTL)
	if first {
		h.emit(Event{Kind: Connected, Peer: c.remote, Conn: c})
	}
	go c.acceptStreams()
	go h.watch(c)
	h.wg.Add(1)
	go h.identify(c)
	if over {
		select {
		case h.trimCh <- struct{}{}:
		default:
		}
	}
	return nil
}

// Bounds of closeWhenIdle: how often a relayed connection that a direct
// one replaced is checked for open streams, and how long its streams may
// keep it.
const (
	idleCheck   = 100 * time.Millisecond
	relayLinger = time.Minute
)

// closeWhenIdle closes a relayed connection that a direct one replaced
// once its last stream closes (new streams go to the direct connection,
// which bestConn now returns), or after relayLinger: a transfer in flight
// through the relay finishes there instead of being cut.
func (h *Host) closeWhenIdle(c *Conn) {
	defer h.wg.Done()
	t := time.NewTicker(idleCheck)
	defer t.Stop()
	deadline := time.Now().Add(relayLinger)
	for c.NumStreams() > 0 && time.Now().Before(deadline) {
		select {
		case <-t.C:
		case <-c.Done():
			return
		case <-h.ctx.Done():
			return
		}
	}
	c.closeWithReason("replaced by a direct connection")
}

// watch removes c when it ends.
func (h *Host) watch(c *Conn) {
	defer h.wg.Done()
	<-c.Done()
	h.mu.Lock()
	cs := h.conns[c.remote]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i:i], cs[i+1:]...)
			break
		}
	}
	last := len(cs) == 0
	if last {
		delete(h.conns, c.remote)
	} else {
		h.conns[c.remote] = cs
	}
	if c.dir == Inbound {
		h.nIn--
	} else {
		h.nOut--
	}
	h.mu.Unlock()
	c.log.Debug("disconnected")
	if last {
		h.ps.UpdateAddrs(c.remote, ConnectedAddrTTL, RecentlyConnectedAddrTTL)
		h.emit(Event{Kind: Disconnected, Peer: c.remote, Conn: c})
	}
}

func (h *Host) bestConnLocked(id peer.ID) *Conn {
	for _, c := range h.conns[id] {
		if !c.IsClosed() {
			return c
		}
	}
	return nil
}

func (h *Host) bestConn(id peer.ID) *Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bestConnLocked(id)
}

// Conn returns the connection to a peer, or nil.
func (h *Host) Conn(id peer.ID) *Conn { return h.bestConn(id) }

// ConnsToPeer returns every open connection to a peer (more than one only
// briefly, while a duplicate is being closed).
func (h *Host) ConnsToPeer(id peer.ID) []*Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Conn(nil), h.conns[id]...)
}

// Conns returns every open connection.
func (h *Host) Conns() []*Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*Conn
	for _, cs := range h.conns {
		out = append(out, cs...)
	}
	return out
}

// Peers returns the connected peers, sorted.
func (h *Host) Peers() []peer.ID {
	h.mu.Lock()
	out := make([]peer.ID, 0, len(h.conns))
	for id := range h.conns {
		out = append(out, id)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Connected reports whether a connection to the peer is open.
func (h *Host) Connected(id peer.ID) bool { return h.bestConn(id) != nil }

// ClosePeer closes every connection to a peer.
func (h *Host) ClosePeer(id peer.ID) {
	for _, c := range h.ConnsToPeer(id) {
		c.closeWithReason("closed locally")
	}
}

// NewStream opens a stream to a peer for the first of protos it supports,
// connecting first (with the peerstore's addresses) if needed. With one
// protocol the negotiation is optimistic (see Conn.NewStream). A limited
// relayed connection is used only under WithLimitedConn; otherwise the
// stream waits for a hole punch to give a direct one (see DataConn).
func (h *Host) NewStream(ctx context.Context, id peer.ID, protos ...string) (*Stream, error) {
	for attempt := 0; ; attempt++ {
		c, err := h.connect(ctx, peer.AddrInfo{ID: id})
		if err == nil && !limitedAllowed(ctx) {
			c, err = h.dataConn(ctx, c)
		}
		if err != nil {
			return nil, err
		}
		s, err := c.NewStream(ctx, protos...)
		if err != nil && c.IsClosed() && attempt == 0 && ctx.Err() == nil {
			continue // lost a duplicate collapse or the peer went away: redial once
		}
		return s, err
	}
}

// Protect keeps a peer's connections from trimming until Unprotect with
// the same tag.
func (h *Host) Protect(id peer.ID, tag string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.protected[id] == nil {
		h.protected[id] = map[string]struct{}{}
	}
	h.protected[id][tag] = struct{}{}
}

// Unprotect removes a protection tag.
func (h *Host) Unprotect(id peer.ID, tag string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.protected[id], tag)
	if len(h.protected[id]) == 0 {
		delete(h.protected, id)
	}
}

// maintain trims connections every TrimInterval or when a new connection
// crosses HighWater.
func (h *Host) maintain() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.Limits.TrimInterval)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		case <-h.trimCh:
		}
		h.trim()
	}
}

// trim closes connections above HighWater, down to LowWater: those past
// their grace period and unprotected, with fewest streams and least recent
// activity first.
func (h *Host) trim() {
	l := h.cfg.Limits
	h.mu.Lock()
	total := h.nIn + h.nOut
	if total <= l.HighWater {
		h.mu.Unlock()
		return
	}
	cutoff := time.Now().Add(-l.GracePeriod)
	var cands []*Conn
	for id, cs := range h.conns {
		if len(h.protected[id]) > 0 {
			continue
		}
		for _, c := range cs {
			if c.opened.Before(cutoff) {
				cands = append(cands, c)
			}
		}
	}
	h.mu.Unlock()
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if sa, sb := a.NumStreams(), b.NumStreams(); sa != sb {
			return sa < sb
		}
		return a.lastActive.Load() < b.lastActive.Load()
	})
	n := total - l.LowWater
	for _, c := range cands[:min(n, len(cands))] {
		c.closeWithReason("trimmed: above connection high water")
	}
}

// DialAddr dials peer id at exactly a, never at another of its
// addresses, and registers the connection like any other; the caller
// closes it. AutoNAT's dial back uses it: it tests one address. A
// connection to id that this host already dialled makes it fail with a
// duplicate-connection error.
func (h *Host) DialAddr(ctx context.Context, a ma.Multiaddr, id peer.ID) (*Conn, error) {
	if id == h.id {
		return nil, ErrSelfDial
	}
	if !h.cfg.Transport.CanDial(a) {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
	}
	c, err := h.dialOne(ctx, a, id)
	if err != nil {
		return nil, err
	}
	if err := h.addConn(c); err != nil {
		return nil, err
	}
	return c, nil
}
