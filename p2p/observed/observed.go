// Package observed collects the addresses peers say they see this host at
// (identify's observed address) and confirms one only when peers in
// several distinct networks report it: one peer, or many peers of one
// network, can say anything, and nothing they say alone is believed.
//
// Observations are reduced to the "thin waist" (IP and TCP port). An
// observation made on a connection we dialled from an ephemeral port
// names the NAT's mapping of that port, which nobody can dial again; it
// is taken as a guess that the same IP forwards our listen port (true of
// 1:1 NATs and port forwards, which AutoNAT then checks).
package observed

import (
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/peer"
)

// Defaults of Config.
const (
	DefaultThreshold = 4
	DefaultTTL       = 30 * time.Minute
	// maxGroups bounds the observer groups remembered: each holds one
	// observation, so memory stays bounded whatever peers send.
	maxGroups = 1024
)

// Config tunes a Manager; the zero value selects the defaults.
type Config struct {
	// Threshold is how many observer groups (distinct /24 IPv4 or /56
	// IPv6 networks) must report an address to confirm it (default 4, as
	// go-libp2p's ObservedAddrManager).
	Threshold int
	// TTL is how long an observation counts (default 30 min).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Observation is what identify learnt on one connection.
type Observation struct {
	// Observed is the address the peer says it sees us at.
	Observed ma.Multiaddr
	// Local and Remote are the connection's own endpoints.
	Local, Remote ma.Multiaddr
	// Peer is the observer.
	Peer peer.ID
	// Inbound says the peer dialled us: it reached our listen port, so
	// the observed port is one that can be dialled.
	Inbound bool
}

// record is one group's latest observation.
type record struct {
	peer      peer.ID
	raw, cand ma.Multiaddr
	seen      time.Time
}

// Manager holds observations, one per observer group. Its methods are
// safe for concurrent use.
type Manager struct {
	cfg    Config
	mu     sync.Mutex
	groups map[string]record
}

// New returns an empty Manager.
func New(cfg Config) *Manager {
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, groups: map[string]record{}}
}

// Record notes an observation; listen are the host's bound listen
// addresses. Observations that cannot be true (an address of another
// family than the connection, a private or loopback address reported by a
// peer that is not, a non-TCP address) are dropped, and it reports whether
// o was kept.
func (m *Manager) Record(o Observation, listen []ma.Multiaddr) bool {
	obsIP, obsPort, ok := ThinWaist(o.Observed)
	if !ok || !obsIP.IsGlobalUnicast() && !obsIP.IsLoopback() {
		return false
	}
	localIP, localPort, ok1 := ThinWaist(o.Local)
	remoteIP, _, ok2 := ThinWaist(o.Remote)
	if !ok1 || !ok2 || obsIP.Is4() != localIP.Is4() {
		return false
	}
	if obsIP.IsLoopback() != remoteIP.IsLoopback() || IsPublicIP(remoteIP) && !IsPublicIP(obsIP) {
		return false
	}
	port, ok := candidatePort(o.Inbound, localIP, localPort, obsPort, listen)
	if !ok {
		return false
	}
	cand := Addr(obsIP, port)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	g := group(remoteIP)
	if _, ok := m.groups[g]; !ok && len(m.groups) >= maxGroups {
		m.pruneLocked(now)
		if len(m.groups) >= maxGroups {
			return false
		}
	}
	m.groups[g] = record{peer: o.Peer, raw: Addr(obsIP, obsPort), cand: cand, seen: now}
	return true
}

// candidatePort is the port others could dial: the observed one when the
// connection used a listen port, else the listen port of the same family.
func candidatePort(inbound bool, localIP netip.Addr, localPort, obsPort uint16, listen []ma.Multiaddr) (uint16, bool) {
	var guess uint16
	for _, l := range listen {
		ip, p, ok := ThinWaist(l)
		if !ok || ip.Is4() != localIP.Is4() || !ip.IsUnspecified() && ip != localIP {
			continue
		}
		if p == localPort {
			return obsPort, true
		}
		if guess == 0 {
			guess = p
		}
	}
	if inbound {
		return obsPort, true
	}
	return guess, guess != 0
}

func (m *Manager) pruneLocked(now time.Time) {
	for g, r := range m.groups {
		if now.Sub(r.seen) > m.cfg.TTL {
			delete(m.groups, g)
		}
	}
}

// Count is an address and how many observer groups report it.
type Count struct {
	Addr   ma.Multiaddr
	Groups int
}

// counts tallies live observations by address (cand or raw), most
// reported first.
func (m *Manager) counts(raw bool) []Count {
	m.mu.Lock()
	now := m.cfg.Now()
	m.pruneLocked(now)
	n := map[string]*Count{}
	for _, r := range m.groups {
		a := r.cand
		if raw {
			a = r.raw
		}
		c := n[string(a.Bytes())]
		if c == nil {
			c = &Count{Addr: a}
			n[string(a.Bytes())] = c
		}
		c.Groups++
	}
	m.mu.Unlock()
	out := make([]Count, 0, len(n))
	for _, c := range n {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Groups != out[j].Groups {
			return out[i].Groups > out[j].Groups
		}
		return out[i].Addr.Compare(out[j].Addr) < 0
	})
	return out
}

// Candidates returns the dialable addresses peers report, confirmed or
// not, the most reported first.
func (m *Manager) Candidates() []Count { return m.counts(false) }

// Raw returns the addresses as peers reported them, ports included, the
// most reported first.
func (m *Manager) Raw() []Count { return m.counts(true) }

// Confirmed returns the candidates that at least Threshold observer
// groups report.
func (m *Manager) Confirmed() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, c := range m.Candidates() {
		if c.Groups >= m.cfg.Threshold {
			out = append(out, c.Addr)
		}
	}
	return out
}

// By returns the candidate that peer p last reported, if its
// observation still counts.
func (m *Manager) By(p peer.ID) (ma.Multiaddr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	for _, r := range m.groups {
		if r.peer == p && now.Sub(r.seen) <= m.cfg.TTL {
			return r.cand, true
		}
	}
	return nil, false
}

// group names the network an observer is in: its /24 (IPv4) or /56
// (IPv6), so that one operator's many addresses count once.
func group(ip netip.Addr) string {
	bits := 24
	if !ip.Is4() {
		bits = 56
	}
	p, _ := ip.Prefix(bits)
	return p.String()
}

// ThinWaist returns the IP and TCP port of an /ip4|ip6/A/tcp/N address
// (anything after them, such as /p2p, is ignored).
func ThinWaist(a ma.Multiaddr) (netip.Addr, uint16, bool) {
	if len(a) < 2 || a[1].Code() != ma.P_TCP {
		return netip.Addr{}, 0, false
	}
	if c := a[0].Code(); c != ma.P_IP4 && c != ma.P_IP6 {
		return netip.Addr{}, 0, false
	}
	ip, ok := netip.AddrFromSlice(a[0].RawValue())
	raw := a[1].RawValue()
	if !ok || len(raw) != 2 {
		return netip.Addr{}, 0, false
	}
	return ip.Unmap(), uint16(raw[0])<<8 | uint16(raw[1]), true
}

// Addr is /ip4|ip6/IP/tcp/PORT.
func Addr(ip netip.Addr, port uint16) ma.Multiaddr {
	ap := netip.AddrPortFrom(ip, port)
	proto := "/ip4/"
	if !ip.Is4() {
		proto = "/ip6/"
	}
	a, _ := ma.NewMultiaddr(proto + ap.Addr().String() + "/tcp/" + strconv.Itoa(int(port)))
	return a
}

// cgnat is the shared address space of carrier-grade NATs (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// IsPublicIP reports whether ip can be a public internet address: global
// unicast, not private (RFC 1918, RFC 4193), not carrier-grade NAT space.
// Documentation ranges (198.51.100.0/24...) count as public: no router
// forwards them, so nothing on the internet is ever dialled there by
// mistake, and the NAT lab (testdata/lab/nat) builds its internet in one.
func IsPublicIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !cgnat.Contains(ip)
}

// IsPublic reports whether a is a thin-waist address on a public IP.
func IsPublic(a ma.Multiaddr) bool {
	ip, _, ok := ThinWaist(a)
	return ok && IsPublicIP(ip)
}
