package autonat

import (
	"bufio"
	"context"
	"log/slog"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/observed"
	"github.com/share-p2p/share/p2p/peer"
)

// Protocols returns the dial-request and dial-back protocol IDs of a
// network: libp2p's on network "ipfs", /NETWORK/autonat/2/... elsewhere.
func Protocols(network string) (request, back string) {
	prefix := "/" + network
	if network == "ipfs" {
		prefix = "/libp2p"
	}
	return prefix + "/autonat/2/dial-request", prefix + "/autonat/2/dial-back"
}

// Server defaults.
const (
	DefaultDialDataBytes = 30000
	DefaultPerPeer       = 12
	DefaultGlobal        = 60
	DefaultDialData      = 12
	DefaultDialTimeout   = 10 * time.Second
	// streamTimeout bounds a whole request, dial data and dial back
	// included.
	streamTimeout = time.Minute
)

// ServerConfig configures a Server; only Dialer is required.
type ServerConfig struct {
	// Dialer dials back: a host with an identity of its own and no
	// listen address, on the same transport as the server's host.
	Dialer *p2p.Host
	// DialDataBytes is the dial data asked of a client whose address to
	// dial is not the IP it connects from (default 30000; the spec says
	// 30 to 100 kB).
	DialDataBytes int
	// PerPeer, Global and DialData bound the requests served per minute:
	// from one peer (default 12), in all (60), and those needing dial
	// data (12). Over a limit, requests are rejected.
	PerPeer, Global, DialData int
	// DialTimeout bounds the dial back (default 10 s).
	DialTimeout time.Duration
	// AllowPrivate also dials private and loopback addresses (tests, and
	// networks that are all private); by default they are refused.
	AllowPrivate bool
	// OnResult, if set, is told the outcome of each request: "ok",
	// "dial_error", "dial_back_error", "refused", "rejected" or "bad".
	OnResult func(outcome string)
	Logger   *slog.Logger
	// Now is the clock of the rate limits (default time.Now).
	Now func() time.Time
}

// Server serves AutoNAT v2 dial requests on a host.
type Server struct {
	h         *p2p.Host
	cfg       ServerConfig
	req, back string
	lim       *limiter
	log       *slog.Logger
}

// NewServer registers the dial-request protocol on h. Close unregisters
// it (the Dialer is the caller's to close).
func NewServer(h *p2p.Host, cfg ServerConfig) *Server {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.DialDataBytes, DefaultDialDataBytes)
	def(&cfg.PerPeer, DefaultPerPeer)
	def(&cfg.Global, DefaultGlobal)
	def(&cfg.DialData, DefaultDialData)
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnResult == nil {
		cfg.OnResult = func(string) {}
	}
	s := &Server{h: h, cfg: cfg, lim: newLimiter(cfg.PerPeer, cfg.Global, cfg.DialData, cfg.Now), log: cfg.Logger}
	s.req, s.back = Protocols(h.Network())
	h.SetHandler(s.req, s.serve)
	return s
}

// Close stops serving.
func (s *Server) Close() { s.h.RemoveHandler(s.req) }

func (s *Server) serve(st *p2p.Stream) {
	st.SetDeadline(time.Now().Add(streamTimeout))
	br := bufio.NewReaderSize(st, 512)
	m, err := readMessage(br)
	if err != nil || m.Type != DialRequest {
		s.cfg.OnResult("bad")
		st.Reset()
		return
	}
	p := st.RemotePeer()
	if !s.lim.acquire(p) {
		s.respond(st, &Message{Type: DialResponse, Status: StatusRequestRejected}, "rejected")
		return
	}
	defer s.lim.release(p)
	idx, addr, ok := s.choose(m.Addrs)
	if !ok {
		s.respond(st, &Message{Type: DialResponse, Status: StatusDialRefused}, "refused")
		return
	}
	if !sameIP(addr, st.Conn().RemoteMultiaddr()) {
		if !s.lim.acquireData() {
			s.respond(st, &Message{Type: DialResponse, Status: StatusRequestRejected}, "rejected")
			return
		}
		if err := s.readDialData(st, br, idx); err != nil {
			s.log.Debug("autonat: dial data", "peer", p.ShortString(), "err", err)
			s.cfg.OnResult("bad")
			st.Reset()
			return
		}
	}
	status := s.dialBack(p, addr, m.Nonce)
	outcome := map[DialStatus]string{DialOK: "ok", DialError: "dial_error", DialBackError: "dial_back_error"}[status]
	s.respond(st, &Message{Type: DialResponse, Status: StatusOK, AddrIdx: uint32(idx), DialStatus: status}, outcome)
}

func (s *Server) respond(st *p2p.Stream, m *Message, outcome string) {
	s.cfg.OnResult(outcome)
	if err := p2p.WriteDelimited(st, m.Append(nil)); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// choose returns the first address of a request the server will dial:
// /ip4|ip6/A/tcp/N, on a public IP unless AllowPrivate, of a family the
// server has addresses of (an IPv4-only server that tried an IPv6 address
// would report it unreachable, wrongly).
func (s *Server) choose(addrs []ma.Multiaddr) (int, ma.Multiaddr, bool) {
	has4, has6 := s.families()
	for i, a := range addrs {
		if a == nil || len(a) != 2 {
			continue
		}
		ip, port, ok := observed.ThinWaist(a)
		if !ok || port == 0 || ip.Is4() && !has4 || !ip.Is4() && !has6 {
			continue
		}
		if !observed.IsPublicIP(ip) && !(s.cfg.AllowPrivate && (ip.IsGlobalUnicast() || ip.IsLoopback())) {
			continue
		}
		return i, a, true
	}
	return 0, nil, false
}

// families says whether the host has IPv4 and IPv6 addresses it can
// dial out from: any IPv4 one but loopback (a NAT takes it out), a
// public IPv6 one; loopback too with AllowPrivate.
func (s *Server) families() (has4, has6 bool) {
	for _, a := range s.h.Addrs() {
		ip, _, ok := observed.ThinWaist(a)
		switch {
		case !ok:
		case s.cfg.AllowPrivate && ip.IsLoopback(), ip.Is4() && ip.IsGlobalUnicast(), observed.IsPublicIP(ip):
			has4, has6 = has4 || ip.Is4(), has6 || !ip.Is4()
		}
	}
	return has4, has6
}

// sameIP reports whether a and b have one IP.
func sameIP(a, b ma.Multiaddr) bool {
	ipa, _, ok1 := observed.ThinWaist(a)
	ipb, _, ok2 := observed.ThinWaist(b)
	return ok1 && ok2 && ipa == ipb
}

// readDialData asks for DialDataBytes and reads them, in chunks of at
// most MaxDataChunk; a client that sends anything else is cut off.
func (s *Server) readDialData(st *p2p.Stream, br *bufio.Reader, idx int) error {
	ask := &Message{Type: DialDataRequest, AddrIdx: uint32(idx), NumBytes: uint64(s.cfg.DialDataBytes)}
	if err := p2p.WriteDelimited(st, ask.Append(nil)); err != nil {
		return err
	}
	for got := 0; got < s.cfg.DialDataBytes; {
		m, err := readMessage(br)
		if err != nil {
			return err
		}
		if m.Type != DialDataResponse || len(m.Data) > MaxDataChunk {
			return ErrBadMessage
		}
		if len(m.Data) == 0 {
			return ErrBadMessage // no progress: a client stalling the stream
		}
		got += len(m.Data)
	}
	return nil
}

// dialBack dials p at addr from the dialer and sends nonce on the
// dial-back protocol.
func (s *Server) dialBack(p peer.ID, addr ma.Multiaddr, nonce uint64) DialStatus {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	defer cancel()
	c, err := s.cfg.Dialer.DialAddr(ctx, addr, p)
	if err != nil {
		s.log.Debug("autonat: dial back failed", "peer", p.ShortString(), "addr", addr, "err", err)
		return DialError
	}
	defer c.Close()
	st, err := c.NewStream(ctx, s.back)
	if err != nil {
		return DialBackError
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(s.cfg.DialTimeout))
	if err := p2p.WriteDelimited(st, AppendDialBack(nil, nonce)); err != nil {
		return DialBackError
	}
	br := bufio.NewReaderSize(st, 64)
	b, err := p2p.ReadDelimited(br, br, 64)
	if err != nil {
		return DialBackError
	}
	if _, err := UnmarshalDialBackResponse(b); err != nil {
		return DialBackError
	}
	return DialOK
}

// readMessage reads one length-prefixed dial-request stream message.
func readMessage(br *bufio.Reader) (*Message, error) {
	b, err := p2p.ReadDelimited(br, br, MaxMessageSize)
	if err != nil {
		return nil, err
	}
	return UnmarshalMessage(b)
}
