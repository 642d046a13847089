package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// Errors of the client.
var (
	// ErrRefused: the relay answered with a status other than OK (the
	// error says which).
	ErrRefused = errors.New("relay refused")
	// ErrNotRelayAddr: the address is not [<addr>]/p2p/RELAY/p2p-circuit.
	ErrNotRelayAddr = errors.New("not a relay address")
)

// StatusError is a relay's refusal.
type StatusError struct {
	Op     string // "reserve", "connect" or "stop"
	Relay  peer.ID
	Status Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("relay %s: %s: %s", e.Relay.ShortString(), e.Op, e.Status)
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *StatusError) Unwrap() error { return ErrRefused }

// Held is a reservation the client holds on a relay.
type Held struct {
	Relay   peer.ID
	Expire  time.Time
	Addrs   []ma.Multiaddr // the relay's, with /p2p/RELAY
	Limit   *Limit         // nil: the relay sets none
	Voucher *Voucher       // nil if the relay sent none
	granted time.Time
}

// Client reserves slots on relays, accepts the circuits they open to this
// host (the stop protocol) and dials peers through relays for the host.
type Client struct {
	h   *p2p.Host
	log *slog.Logger

	mu   sync.Mutex
	held map[peer.ID]*Held
}

// NewClient attaches a relay client to h: h dials relay addresses with it,
// serves the stop protocol, and advertises the /p2p-circuit addresses of
// the reservations held.
func NewClient(h *p2p.Host, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{h: h, log: log.With("relay", "client"), held: map[peer.ID]*Held{}}
	h.SetCircuitDialer(c)
	h.AddAddrSource(c.Addrs)
	h.SetHandler(StopProtocol, c.serveStop)
	return c
}

// Reserve asks relay for a reservation (or renews the one held) and
// records it. The relay must be connected or in the peerstore.
func (c *Client) Reserve(ctx context.Context, relay peer.ID) (*Held, error) {
	s, err := c.h.NewStream(ctx, relay, HopProtocol)
	if err != nil {
		return nil, fmt.Errorf("reserve on %s: %w", relay.ShortString(), err)
	}
	defer s.Close()
	stop := deadline(ctx, s)
	defer stop()
	if s.Conn().Relayed() {
		s.Reset()
		return nil, fmt.Errorf("reserve on %s: the connection to the relay is itself relayed", relay.ShortString())
	}
	if err := writeMsg(s, (&HopMessage{Type: HopReserve}).Marshal()); err != nil {
		s.Reset()
		return nil, fmt.Errorf("reserve on %s: %w", relay.ShortString(), err)
	}
	resp, err := readHop(s)
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("reserve on %s: %w", relay.ShortString(), err)
	}
	held, err := c.accept(relay, resp)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.held[relay] = held
	c.mu.Unlock()
	c.h.Protect(relay, protectTag)
	return held, nil
}

// accept checks a relay's answer to RESERVE.
func (c *Client) accept(relay peer.ID, resp *HopMessage) (*Held, error) {
	if resp.Type != HopStatus {
		return nil, fmt.Errorf("reserve on %s: %w: %d instead of STATUS", relay.ShortString(), ErrMalformed, resp.Type)
	}
	if resp.Status != StatusOK {
		return nil, &StatusError{Op: "reserve", Relay: relay, Status: resp.Status}
	}
	r := resp.Reservation
	if r == nil {
		return nil, fmt.Errorf("reserve on %s: %w: OK without a reservation", relay.ShortString(), ErrMalformed)
	}
	now := time.Now()
	expire := time.Unix(int64(min(r.Expire, 1<<62)), 0)
	if !expire.After(now) {
		return nil, fmt.Errorf("reserve on %s: %w: reservation expired at %s", relay.ShortString(), ErrMalformed, expire)
	}
	held := &Held{Relay: relay, Expire: expire, Limit: resp.Limit, granted: now}
	for _, a := range r.Addrs {
		if a = withRelay(a, relay); a != nil {
			held.Addrs = append(held.Addrs, a)
		}
	}
	if len(r.Voucher) > 0 {
		v, err := OpenVoucher(r.Voucher)
		if err != nil {
			return nil, fmt.Errorf("reserve on %s: %w", relay.ShortString(), err)
		}
		if v.Relay != relay || v.Peer != c.h.ID() {
			return nil, fmt.Errorf("reserve on %s: %w: for %s on %s", relay.ShortString(), ErrBadVoucher, v.Peer, v.Relay)
		}
		held.Voucher = v
	}
	return held, nil
}

// withRelay returns a relay address ending in /p2p/relay (appending it if
// missing), or nil if it names another peer or is itself relayed.
func withRelay(a ma.Multiaddr, relay peer.ID) ma.Multiaddr {
	if p2p.IsRelayAddr(a) {
		return nil
	}
	if len(a) > 0 && a[len(a)-1].Code() == ma.P_P2P {
		if peer.ID(a[len(a)-1].RawValue()) != relay {
			return nil
		}
		return a
	}
	return append(append(ma.Multiaddr(nil), a...), *relay.P2pComponent())
}

// Reservations returns the reservations held, unexpired.
func (c *Client) Reservations() []Held {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Held, 0, len(c.held))
	for _, h := range c.held {
		if now.Before(h.Expire) {
			out = append(out, *h)
		}
	}
	return out
}

// Drop forgets the reservation on relay (it expires at the relay).
func (c *Client) Drop(relay peer.ID) {
	c.mu.Lock()
	_, ok := c.held[relay]
	delete(c.held, relay)
	c.mu.Unlock()
	if ok {
		c.h.Unprotect(relay, protectTag)
	}
}

// Addrs returns this host's addresses through the relays it holds
// reservations on: each relay address with /p2p-circuit appended.
func (c *Client) Addrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, h := range c.Reservations() {
		for _, a := range h.Addrs {
			out = append(out, append(append(ma.Multiaddr(nil), a...), circuitComponent))
		}
	}
	return out
}

// holds reports whether the client holds a reservation on relay.
func (c *Client) holds(relay peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.held[relay]
	return ok && time.Now().Before(h.Expire)
}

// deadline sets s's deadline from ctx (streamTimeout without one) and
// returns the function that clears it.
func deadline(ctx context.Context, s *p2p.Stream) (stop func()) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(streamTimeout)
	}
	s.SetDeadline(dl)
	cancel := context.AfterFunc(ctx, func() { s.SetDeadline(time.Unix(1, 0)) })
	return func() {
		cancel()
		s.SetDeadline(time.Time{})
	}
}

// splitRelayAddr splits [<addr>]/p2p/RELAY/p2p-circuit into the relay's
// transport address (may be empty) and ID.
func splitRelayAddr(a ma.Multiaddr) (ma.Multiaddr, peer.ID, error) {
	i := len(a) - 1
	if i < 1 || a[i].Code() != ma.P_CIRCUIT || a[i-1].Code() != ma.P_P2P {
		return nil, "", fmt.Errorf("%w: %s", ErrNotRelayAddr, a)
	}
	relay := peer.ID(a[i-1].RawValue())
	if err := relay.Validate(); err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrNotRelayAddr, a, err)
	}
	base := a[:i-1]
	if p2p.IsRelayAddr(base) {
		return nil, "", fmt.Errorf("%w: %s: nested circuits", ErrNotRelayAddr, a)
	}
	return base, relay, nil
}

// CanDialCircuit implements p2p.CircuitDialer.
func (c *Client) CanDialCircuit(a ma.Multiaddr) bool {
	_, relay, err := splitRelayAddr(a)
	return err == nil && relay != c.h.ID()
}

// DialCircuit implements p2p.CircuitDialer: it asks the relay of a to
// connect this host to target (HOP CONNECT) and returns the stream as a
// raw connection for the host to upgrade.
func (c *Client) DialCircuit(ctx context.Context, a ma.Multiaddr, target peer.ID) (net.Conn, error) {
	base, relay, err := splitRelayAddr(a)
	if err != nil {
		return nil, err
	}
	if relay == target || relay == c.h.ID() {
		return nil, fmt.Errorf("%w: %s: relay is an end of the circuit", ErrNotRelayAddr, a)
	}
	if !c.h.Connected(relay) {
		ai := peer.AddrInfo{ID: relay}
		if len(base) > 0 {
			ai.Addrs = []ma.Multiaddr{base}
		}
		if err := c.h.Connect(ctx, ai); err != nil {
			return nil, fmt.Errorf("relay %s: %w", relay.ShortString(), err)
		}
	}
	s, err := c.h.NewStream(ctx, relay, HopProtocol)
	if err != nil {
		return nil, fmt.Errorf("relay %s: %w", relay.ShortString(), err)
	}
	limit, err := c.hopConnect(ctx, s, relay, target)
	if err != nil {
		s.Reset()
		return nil, err
	}
	return newCircuitConn(s, limit), nil
}

// hopConnect sends CONNECT, checks the relay's answer and returns the
// circuit's limit (nil: none).
func (c *Client) hopConnect(ctx context.Context, s *p2p.Stream, relay, target peer.ID) (*Limit, error) {
	if s.Conn().Relayed() {
		return nil, fmt.Errorf("relay %s: %w: connection to the relay is relayed", relay.ShortString(), ErrNotRelayAddr)
	}
	stop := deadline(ctx, s)
	defer stop()
	req := &HopMessage{Type: HopConnect, Peer: &PeerInfo{ID: target}}
	if err := writeMsg(s, req.Marshal()); err != nil {
		return nil, fmt.Errorf("relay %s: connect: %w", relay.ShortString(), err)
	}
	resp, err := readHop(s)
	if err != nil {
		return nil, fmt.Errorf("relay %s: connect: %w", relay.ShortString(), err)
	}
	if resp.Type != HopStatus {
		return nil, fmt.Errorf("relay %s: connect: %w: type %d instead of STATUS", relay.ShortString(), ErrMalformed, resp.Type)
	}
	if resp.Status != StatusOK {
		return nil, &StatusError{Op: "connect", Relay: relay, Status: resp.Status}
	}
	return resp.Limit, nil
}

// serveStop accepts a circuit a relay opens to this host, if the client
// holds a reservation there: a relay it never asked cannot push
// connections at it. The handler lives as long as the connection.
func (c *Client) serveStop(s *p2p.Stream) {
	relay := s.RemotePeer()
	s.SetDeadline(time.Now().Add(streamTimeout))
	msg, err := readStop(s)
	status := StatusOK
	switch {
	case err != nil:
		status = StatusMalformedMessage
	case msg.Type != StopConnect:
		status = StatusUnexpectedMessage
	case msg.Peer == nil:
		status = StatusMalformedMessage
	case !c.holds(relay) || s.Conn().Relayed():
		status = StatusPermissionDenied
	}
	if status != StatusOK {
		c.log.Debug("stop: refused", "relay", relay.ShortString(), "status", status, "err", err)
		writeMsg(s, (&StopMessage{Type: StopStatus, Status: status}).Marshal())
		s.Close()
		return
	}
	if err := writeMsg(s, (&StopMessage{Type: StopStatus, Status: StatusOK}).Marshal()); err != nil {
		s.Reset()
		return
	}
	s.SetDeadline(time.Time{})
	conn, err := c.h.AcceptRelayed(newCircuitConn(s, msg.Limit), msg.Peer.ID)
	if err != nil {
		c.log.Debug("stop: relayed connection failed", "relay", relay.ShortString(), "peer", msg.Peer.ID.ShortString(), "err", err)
		s.Reset()
		return
	}
	<-conn.Done()
}
