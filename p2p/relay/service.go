package relay

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// Limits bound what a Service gives to peers. A count of 0 selects its
// default; CircuitDuration and CircuitBytes of 0 mean no limit (a relay
// configured for bulk data), DefaultLimits has libp2p's.
type Limits struct {
	// Reservations bounds the reservations held at once (default 128),
	// ReservationsPerIP those of one IP address (default 8). A peer holds
	// one: reserving again renews it.
	Reservations, ReservationsPerIP int
	// ReservationTTL is how long a reservation lasts unless renewed
	// (default 1 h).
	ReservationTTL time.Duration
	// Circuits bounds the circuits open at once (default 64),
	// CircuitsPerPeer those one peer is an end of (default 16).
	Circuits, CircuitsPerPeer int
	// CircuitDuration ends a circuit after this long (0: never).
	CircuitDuration time.Duration
	// CircuitBytes ends a circuit once this many bytes went one way
	// (0: no limit).
	CircuitBytes int64
}

// DefaultLimits returns the limits of a relay by default: go-libp2p's
// (kubo's), whose circuits carry 128 KiB for 2 min at most, enough to
// coordinate a hole punch, not to carry a file.
func DefaultLimits() Limits {
	return Limits{
		Reservations: 128, ReservationsPerIP: 8, ReservationTTL: time.Hour,
		Circuits: 64, CircuitsPerPeer: 16,
		CircuitDuration: 2 * time.Minute, CircuitBytes: 128 << 10,
	}
}

func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits()
	for _, f := range []struct {
		v   *int
		def int
	}{{&l.Reservations, d.Reservations}, {&l.ReservationsPerIP, d.ReservationsPerIP}, {&l.Circuits, d.Circuits}, {&l.CircuitsPerPeer, d.CircuitsPerPeer}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if l.ReservationTTL == 0 {
		l.ReservationTTL = d.ReservationTTL
	}
	if l.Reservations < 0 || l.ReservationsPerIP < 0 || l.Circuits < 0 || l.CircuitsPerPeer < 0 ||
		l.ReservationTTL < time.Second || l.CircuitDuration < 0 || l.CircuitBytes < 0 {
		return l, fmt.Errorf("relay limits: negative or too small: %+v", l)
	}
	if l.CircuitDuration > 0 && l.CircuitDuration < time.Second || l.CircuitDuration/time.Second > 1<<32-1 {
		return l, fmt.Errorf("relay limits: CircuitDuration %s: want 0 or 1 s to 136 years", l.CircuitDuration)
	}
	return l, nil
}

// streamTimeout bounds each message exchange of the relay protocol.
const streamTimeout = 30 * time.Second

// protectTag keeps the connections of peers holding reservations.
const protectTag = "relay-reservation"

// Service is a circuit relay: it serves the hop protocol on a host.
type Service struct {
	h   *p2p.Host
	key ed25519.PrivateKey
	lim Limits
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	rsvps    map[peer.ID]rsvp
	perIP    map[string]int
	circuits map[*circuit]struct{}
	perPeer  map[peer.ID]int
	sub      *p2p.Subscription
	done     chan struct{}

	relayed atomic.Int64 // bytes carried, both ways
}

type rsvp struct {
	expire time.Time
	ip     string
}

// Stats is a snapshot of a Service's state.
type Stats struct {
	Reservations, Circuits int
	BytesRelayed           int64
}

// NewService starts a relay on h, whose identity key is key (it signs the
// vouchers). Close stops it.
func NewService(h *p2p.Host, key ed25519.PrivateKey, lim Limits, log *slog.Logger) (*Service, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		h: h, key: key, lim: lim, log: log.With("relay", "service"),
		rsvps:    map[peer.ID]rsvp{},
		perIP:    map[string]int{},
		circuits: map[*circuit]struct{}{},
		perPeer:  map[peer.ID]int{},
		sub:      h.Subscribe(),
		done:     make(chan struct{}),
	}
	go s.watch()
	h.SetHandler(HopProtocol, s.serveHop)
	return s, nil
}

// Close stops serving the hop protocol, drops the reservations and ends
// the open circuits.
func (s *Service) Close() error {
	s.h.RemoveHandler(HopProtocol)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	circuits := make([]*circuit, 0, len(s.circuits))
	for c := range s.circuits {
		circuits = append(circuits, c)
	}
	for id := range s.rsvps {
		s.h.Unprotect(id, protectTag)
	}
	s.rsvps, s.perIP = map[peer.ID]rsvp{}, map[string]int{}
	s.mu.Unlock()
	for _, c := range circuits {
		c.reset()
	}
	s.sub.Close()
	<-s.done
	return nil
}

// Stats returns the reservations and circuits held and the bytes relayed.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Reservations: len(s.rsvps), Circuits: len(s.circuits), BytesRelayed: s.relayed.Load()}
}

// watch drops the reservation of a peer that disconnects: the relay could
// not reach it anyway, and the slot is free for another.
func (s *Service) watch() {
	defer close(s.done)
	for e := range s.sub.Events() {
		if e.Kind != p2p.Disconnected {
			continue
		}
		s.mu.Lock()
		s.dropLocked(e.Peer)
		s.mu.Unlock()
	}
}

func (s *Service) dropLocked(id peer.ID) {
	r, ok := s.rsvps[id]
	if !ok {
		return
	}
	delete(s.rsvps, id)
	if s.perIP[r.ip]--; s.perIP[r.ip] <= 0 {
		delete(s.perIP, r.ip)
	}
	s.h.Unprotect(id, protectTag)
}

// serveHop answers one hop stream: RESERVE or CONNECT.
func (s *Service) serveHop(st *p2p.Stream) {
	st.SetDeadline(time.Now().Add(streamTimeout))
	msg, err := readHop(st)
	if err != nil {
		s.log.Debug("hop: bad request", "peer", st.RemotePeer().ShortString(), "err", err)
		s.refuse(st, StatusMalformedMessage)
		return
	}
	if st.Conn().Relayed() {
		// No reservations or circuits over circuits: the spec's rule.
		s.refuse(st, StatusPermissionDenied)
		return
	}
	switch msg.Type {
	case HopReserve:
		s.reserve(st)
	case HopConnect:
		s.connect(st, msg)
	default:
		s.refuse(st, StatusUnexpectedMessage)
	}
}

// refuse answers st with a status and closes it.
func (s *Service) refuse(st *p2p.Stream, status Status) {
	writeMsg(st, (&HopMessage{Type: HopStatus, Status: status}).Marshal())
	st.Close()
}

// limit is the Limit message of the service's circuits (nil: none).
func (s *Service) limit() *Limit {
	if s.lim.CircuitDuration == 0 && s.lim.CircuitBytes == 0 {
		return nil
	}
	return &Limit{Duration: uint32(s.lim.CircuitDuration / time.Second), Data: uint64(s.lim.CircuitBytes)}
}

// ipOf is the IP address of a connection's remote end ("" if none).
func ipOf(c *p2p.Conn) string {
	ip, err := manet.ToIP(c.RemoteMultiaddr())
	if err != nil {
		return ""
	}
	return ip.String()
}

func (s *Service) reserve(st *p2p.Stream) {
	id := st.RemotePeer()
	expire, status := s.admit(id, ipOf(st.Conn()))
	if status != StatusOK {
		s.log.Debug("reservation refused", "peer", id.ShortString(), "status", status)
		s.refuse(st, status)
		return
	}
	s.h.Protect(id, protectTag)
	voucher := SignVoucher(s.key, &Voucher{Relay: s.h.ID(), Peer: id, Expiration: expire})
	resp := &HopMessage{
		Type:        HopStatus,
		Status:      StatusOK,
		Reservation: &Reservation{Expire: uint64(expire.Unix()), Addrs: s.addrs(), Voucher: voucher},
		Limit:       s.limit(),
	}
	if err := writeMsg(st, resp.Marshal()); err != nil {
		st.Reset()
		return
	}
	s.log.Debug("reservation granted", "peer", id.ShortString(), "expire", expire)
	st.Close()
}

// admit records a reservation for id, or renews it, within the limits.
func (s *Service) admit(id peer.ID, ip string) (time.Time, Status) {
	now := time.Now()
	expire := now.Add(s.lim.ReservationTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return expire, StatusReservationRefused
	}
	if r, ok := s.rsvps[id]; ok && r.ip == ip {
		s.rsvps[id] = rsvp{expire: expire, ip: ip}
		return expire, StatusOK
	}
	s.dropLocked(id) // a renewal from another IP counts there
	if len(s.rsvps) >= s.lim.Reservations {
		s.sweepLocked(now)
	}
	if len(s.rsvps) >= s.lim.Reservations || s.perIP[ip] >= s.lim.ReservationsPerIP {
		return expire, StatusReservationRefused
	}
	s.rsvps[id] = rsvp{expire: expire, ip: ip}
	s.perIP[ip]++
	return expire, StatusOK
}

// sweepLocked drops the expired reservations. It runs only when the
// table is full, so a reservation costs nothing while it waits.
func (s *Service) sweepLocked(now time.Time) {
	for id, r := range s.rsvps {
		if !now.Before(r.expire) {
			s.dropLocked(id)
		}
	}
}

// addrs are the relay's own addresses with /p2p/RELAY: those a reserving
// peer advertises, with /p2p-circuit appended.
func (s *Service) addrs() []ma.Multiaddr {
	p2pc := *s.h.ID().P2pComponent()
	var out []ma.Multiaddr
	for _, a := range s.h.Addrs() {
		if p2p.IsRelayAddr(a) || len(out) == maxAddrs {
			continue
		}
		out = append(out, append(append(ma.Multiaddr(nil), a...), p2pc))
	}
	return out
}

// hasReservation reports whether id holds an unexpired reservation.
func (s *Service) hasReservation(id peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rsvps[id]
	return ok && time.Now().Before(r.expire)
}

// openCircuit counts a circuit between src and dst against the limits.
func (s *Service) openCircuit(src, dst peer.ID) (*circuit, Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, StatusConnectionFailed
	}
	if len(s.circuits) >= s.lim.Circuits || s.perPeer[src] >= s.lim.CircuitsPerPeer || s.perPeer[dst] >= s.lim.CircuitsPerPeer {
		return nil, StatusResourceLimitExceeded
	}
	c := &circuit{s: s, src: src, dst: dst}
	s.circuits[c] = struct{}{}
	s.perPeer[src]++
	s.perPeer[dst]++
	return c, StatusOK
}

func (s *Service) closeCircuit(c *circuit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.circuits[c]; !ok {
		return
	}
	delete(s.circuits, c)
	for _, id := range []peer.ID{c.src, c.dst} {
		if s.perPeer[id]--; s.perPeer[id] <= 0 {
			delete(s.perPeer, id)
		}
	}
}

func (s *Service) connect(st *p2p.Stream, msg *HopMessage) {
	if msg.Peer == nil {
		s.refuse(st, StatusMalformedMessage)
		return
	}
	src, dst := st.RemotePeer(), msg.Peer.ID
	if dst == src || dst == s.h.ID() || !s.hasReservation(dst) {
		s.refuse(st, StatusNoReservation)
		return
	}
	c, status := s.openCircuit(src, dst)
	if status != StatusOK {
		s.refuse(st, status)
		return
	}
	defer s.closeCircuit(c)
	ds, status := s.stop(src, dst)
	if status != StatusOK {
		s.log.Debug("circuit failed", "src", src.ShortString(), "dst", dst.ShortString(), "status", status)
		s.refuse(st, status)
		return
	}
	if err := writeMsg(st, (&HopMessage{Type: HopStatus, Status: StatusOK, Limit: s.limit()}).Marshal()); err != nil {
		st.Reset()
		ds.Reset()
		return
	}
	st.SetDeadline(time.Time{})
	ds.SetDeadline(time.Time{})
	c.splice(st, ds)
}

// stop opens the stop stream to dst and asks it to accept a circuit from
// src.
func (s *Service) stop(src, dst peer.ID) (*p2p.Stream, Status) {
	conn := s.h.Conn(dst)
	if conn == nil {
		return nil, StatusConnectionFailed
	}
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	ds, err := conn.NewStream(ctx, StopProtocol)
	if err != nil {
		return nil, StatusConnectionFailed
	}
	ds.SetDeadline(time.Now().Add(streamTimeout))
	req := &StopMessage{Type: StopConnect, Peer: &PeerInfo{ID: src}, Limit: s.limit()}
	if err := writeMsg(ds, req.Marshal()); err != nil {
		ds.Reset()
		return nil, StatusConnectionFailed
	}
	resp, err := readStop(ds)
	if err != nil || resp.Type != StopStatus || resp.Status != StatusOK {
		ds.Reset()
		return nil, StatusConnectionFailed
	}
	return ds, StatusOK
}
