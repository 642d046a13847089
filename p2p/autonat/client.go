package autonat

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/observed"
	"github.com/share-p2p/share/p2p/peer"
)

// Errors of Check: the server gave no verdict on the address.
var (
	ErrRejected     = errors.New("autonat: server rejected the request (rate limit or resources)")
	ErrRefused      = errors.New("autonat: server refused to dial the address")
	ErrNoDialBack   = errors.New("autonat: server reported a dial back that never arrived")
	ErrDialBack     = errors.New("autonat: server connected but could not send the nonce")
	ErrBadResponse  = errors.New("autonat: bad response")
	ErrDialDataCost = errors.New("autonat: server asked for more dial data than allowed")
)

// Client defaults.
const (
	DefaultConfirmations = 3
	DefaultInterval      = time.Minute
	DefaultResultTTL     = time.Hour
	DefaultMaxDialData   = 100000
	checkTimeout         = 30 * time.Second
	maxResultsPerAddr    = 16
	maxTracked           = 64
	maxCandidates        = 16
)

// ClientConfig configures a Client; the zero value selects the defaults.
type ClientConfig struct {
	// Confirmations is how many servers must agree that an address is
	// reachable (or is not), with fewer saying otherwise (default 3, the
	// spec's suggestion).
	Confirmations int
	// Interval is the time between rounds of checks (default 1 min); a
	// new server's arrival starts one sooner.
	Interval time.Duration
	// ResultTTL is how long a server's answer counts (default 1 h):
	// addresses are checked again as answers expire.
	ResultTTL time.Duration
	// MaxDialData is the most dial data the client sends for one check
	// (default 100000, the spec's upper bound).
	MaxDialData int
	// AllowPrivate also tests private and loopback addresses (tests).
	AllowPrivate bool
	// OnResult, if set, is told each check's outcome: "reachable",
	// "unreachable", "refused", "rejected", "no_dial_back" or "error".
	OnResult func(outcome string)
	Logger   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Reachability is what a node concludes of itself.
type Reachability int

// Reachability values.
const (
	Unknown Reachability = iota
	Public
	Private
)

func (r Reachability) String() string {
	return [...]string{"unknown", "public", "private"}[r]
}

// Status is the client's view of its addresses.
type Status struct {
	Reachability Reachability
	// Reachable and Unreachable are the addresses enough servers agree
	// on, sorted.
	Reachable, Unreachable []ma.Multiaddr
}

type answer struct {
	ok bool
	at time.Time
}

type tracked struct {
	addr    ma.Multiaddr
	answers map[peer.ID]answer
	asked   map[peer.ID]time.Time // servers that gave no verdict
}

// attempt is a check waiting for its dial back.
type attempt struct {
	family4 bool
	got     bool
}

// Client checks the host's addresses with AutoNAT servers.
type Client struct {
	h         *p2p.Host
	cfg       ClientConfig
	req, back string
	log       *slog.Logger
	kick      chan struct{}

	mu      sync.Mutex
	pending map[uint64]*attempt
	addrs   map[string]*tracked
}

// NewClient registers the dial-back protocol on h. Run checks addresses
// until its context ends.
func NewClient(h *p2p.Host, cfg ClientConfig) *Client {
	if cfg.Confirmations <= 0 {
		cfg.Confirmations = DefaultConfirmations
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.ResultTTL <= 0 {
		cfg.ResultTTL = DefaultResultTTL
	}
	if cfg.MaxDialData <= 0 {
		cfg.MaxDialData = DefaultMaxDialData
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
	c := &Client{h: h, cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1),
		pending: map[uint64]*attempt{}, addrs: map[string]*tracked{}}
	c.req, c.back = Protocols(h.Network())
	h.SetHandler(c.back, c.serveDialBack)
	return c
}

// serveDialBack takes a server's dial back: the nonce of a pending check
// marks it received, on a connection of the address's family.
func (c *Client) serveDialBack(st *p2p.Stream) {
	st.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(st, 64)
	b, err := p2p.ReadDelimited(br, br, 64)
	if err != nil {
		st.Reset()
		return
	}
	nonce, err := UnmarshalDialBack(b)
	if err != nil {
		st.Reset()
		return
	}
	ip, _, ok := observed.ThinWaist(st.Conn().LocalMultiaddr())
	c.mu.Lock()
	a := c.pending[nonce]
	if a != nil && ok && st.Conn().Direction() == p2p.Inbound && ip.Is4() == a.family4 {
		a.got = true
	}
	c.mu.Unlock()
	if a == nil {
		st.Reset()
		return
	}
	p2p.WriteDelimited(st, AppendDialBackResponse(nil))
	st.Close()
}

// Check asks server p to dial addr back. It returns true (reachable) or
// false (the server could not connect), or an error when the server gave
// no verdict.
func (c *Client) Check(ctx context.Context, p peer.ID, addr ma.Multiaddr) (bool, error) {
	ip, _, ok := observed.ThinWaist(addr)
	if !ok {
		return false, fmt.Errorf("autonat: %s is not an IP/TCP address", addr)
	}
	nonce := randomNonce()
	a := &attempt{family4: ip.Is4()}
	c.mu.Lock()
	c.pending[nonce] = a
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, nonce)
		c.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	st, err := c.h.NewStream(ctx, p, c.req)
	if err != nil {
		return false, err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(checkTimeout))
	resp, err := c.exchange(st, &Message{Type: DialRequest, Addrs: []ma.Multiaddr{addr}, Nonce: nonce})
	if err != nil {
		st.Reset()
		return false, err
	}
	c.mu.Lock()
	got := a.got
	c.mu.Unlock()
	return verdict(resp, got)
}

// exchange sends the request, pays the dial data asked for, and returns
// the server's response.
func (c *Client) exchange(st *p2p.Stream, req *Message) (*Message, error) {
	if err := p2p.WriteDelimited(st, req.Append(nil)); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(st, 512)
	for paid := false; ; {
		m, err := readMessage(br)
		if err != nil {
			return nil, err
		}
		switch {
		case m.Type == DialResponse:
			return m, nil
		case m.Type != DialDataRequest || paid || m.AddrIdx != 0:
			return nil, ErrBadResponse
		case m.NumBytes > uint64(c.cfg.MaxDialData):
			return nil, ErrDialDataCost
		}
		if err := sendDialData(st, int(m.NumBytes)); err != nil {
			return nil, err
		}
		paid = true
	}
}

// dialDataChunk is one DialDataResponse of MaxDataChunk zero bytes,
// length prefix included, encoded once and sent as often as needed.
var dialDataChunk = func() []byte {
	m := (&Message{Type: DialDataResponse, Data: make([]byte, MaxDataChunk)}).Append(nil)
	return append(binary.AppendUvarint(nil, uint64(len(m))), m...)
}()

func sendDialData(st *p2p.Stream, n int) error {
	for sent := 0; sent < n; sent += MaxDataChunk {
		if _, err := st.Write(dialDataChunk); err != nil {
			return err
		}
	}
	return nil
}

// verdict reads a response, believing a success only with its dial back.
func verdict(m *Message, gotDialBack bool) (bool, error) {
	switch m.Status {
	case StatusOK:
	case StatusRequestRejected:
		return false, ErrRejected
	case StatusDialRefused:
		return false, ErrRefused
	default:
		return false, fmt.Errorf("%w: status %d", ErrBadResponse, m.Status)
	}
	if m.AddrIdx != 0 {
		return false, fmt.Errorf("%w: address index %d of 1", ErrBadResponse, m.AddrIdx)
	}
	switch m.DialStatus {
	case DialOK:
		if !gotDialBack {
			return false, ErrNoDialBack
		}
		return true, nil
	case DialError:
		// A dial back that came anyway proves the address works,
		// whatever the server says.
		return gotDialBack, nil
	case DialBackError:
		if gotDialBack {
			return true, nil
		}
		return false, ErrDialBack
	}
	return false, fmt.Errorf("%w: dial status %d", ErrBadResponse, m.DialStatus)
}

func randomNonce() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
