package mdns

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
	pion "github.com/pion/mdns/v2"

	"github.com/share-p2p/share/p2p/peer"
)

// Limits on what is announced and accepted.
const (
	maxAnnouncedAddrs = 8    // addrN keys a Service announces
	maxTXTEntries     = 32   // TXT strings read from one instance
	maxAddrsPerPeer   = 16   // addresses kept per peer
	maxPeers          = 1024 // peers remembered for deduplication
	maxTXTString      = 255  // RFC 1035 character-string
)

const (
	netKey     = "net"
	addrPrefix = "addr"
	domain     = "local"
)

var (
	errWrongNetwork = errors.New("other network")
	errNoAddrs      = errors.New("no usable address")
	errBadAddr      = errors.New("unusable address")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func hash32(s string, n int) string {
	h := sha256.Sum256([]byte(s))
	return strings.ToLower(b32.EncodeToString(h[:]))[:n]
}

// serviceType is the DNS-SD service type of a network: "_share-HHHHHHHH._udp".
func serviceType(network string) string {
	return "_share-" + hash32(network, 8) + "._udp"
}

// hostName is the SRV target of a node, without the trailing dot.
func hostName(id peer.ID) string {
	return "share-" + hash32(string(id), 16) + "." + domain
}

// record is what a Service announces: SRV port and TXT entries.
type record struct {
	port   uint16
	text   []pion.TXTEntry
	libp2p []string // FormatLibp2p: the TXT strings
}

func (r record) equal(o record) bool {
	return r.port == o.port && slices.EqualFunc(r.text, o.text, func(a, b pion.TXTEntry) bool {
		return a.Key == b.Key && string(a.Value) == string(b.Value)
	})
}

// makeRecord builds the record of node id from its listen addresses. Only
// addresses a receiver would accept are listed; the first TCP port (of any
// address, unspecified ones included) becomes the SRV port.
func makeRecord(network string, id peer.ID, addrs []ma.Multiaddr) record {
	r := record{text: []pion.TXTEntry{pion.NewTXTString(netKey, network)}}
	p2p, err := ma.NewComponent("p2p", id.String())
	if err != nil {
		return r
	}
	n := 0
	for _, a := range addrs {
		ip, port, ok := splitTCP(a, id)
		if !ok {
			continue
		}
		if r.port == 0 {
			r.port = port
		}
		if n == maxAnnouncedAddrs || checkIP(ip, true) != nil {
			continue
		}
		s := tcpAddr(ip, port).Encapsulate(p2p).String()
		if len(addrPrefix)+3+len(s) > maxTXTString {
			continue
		}
		r.text = append(r.text, pion.NewTXTString(addrPrefix+strconv.Itoa(n), s))
		n++
	}
	return r
}

// firstPort returns the first TCP port of addrs, unspecified addresses
// included: the SRV port.
func firstPort(addrs []ma.Multiaddr, id peer.ID) uint16 {
	for _, a := range addrs {
		if _, port, ok := splitTCP(a, id); ok {
			return port
		}
	}
	return 0
}

// instance returns the DNS-SD instance that announces r.
func (r record) instance(network string, id peer.ID) pion.ServiceInstance {
	return pion.ServiceInstance{
		Instance: id.String(),
		Service:  serviceType(network),
		Domain:   domain,
		Port:     r.port,
		Text:     r.text,
	}
}

// parseEvent checks an instance found by browsing and returns the peer it
// announces with its usable transport addresses (without /p2p).
func parseEvent(network string, ev pion.ServiceEvent, allowLoopback bool) (peer.ID, []ma.Multiaddr, error) {
	inst := ev.Instance
	// pion hands a browse session every instance in a packet, whatever
	// service type it belongs to.
	if !strings.EqualFold(inst.Service, serviceType(network)) {
		return "", nil, fmt.Errorf("%w: service type %q", errWrongNetwork, inst.Service)
	}
	if len(inst.Instance) > 63 {
		return "", nil, fmt.Errorf("instance name of %d bytes", len(inst.Instance))
	}
	id, err := peer.Decode(inst.Instance)
	if err != nil {
		return "", nil, err
	}
	if len(inst.Text) > maxTXTEntries {
		return "", nil, fmt.Errorf("%d TXT strings", len(inst.Text))
	}
	var gotNet bool
	var addrs []ma.Multiaddr
	add := func(m ma.Multiaddr) {
		if len(addrs) < maxAddrsPerPeer && !slices.ContainsFunc(addrs, m.Equal) {
			addrs = append(addrs, m)
		}
	}
	for _, e := range inst.Text {
		key := strings.ToLower(e.Key)
		switch {
		case key == netKey:
			if string(e.Value) != network {
				return "", nil, fmt.Errorf("%w %q", errWrongNetwork, e.Value)
			}
			gotNet = true
		case strings.HasPrefix(key, addrPrefix):
			if m, err := parseAddr(string(e.Value), id, allowLoopback); err == nil {
				add(m)
			}
		}
	}
	if !gotNet {
		return "", nil, fmt.Errorf("%w: no %q key", errWrongNetwork, netKey)
	}
	// The address the answer carries is the peer's address on this link.
	if ip := ev.Addr.WithZone("").Unmap(); inst.Port != 0 && checkIP(ip, allowLoopback) == nil {
		add(tcpAddr(ip, inst.Port))
	}
	if len(addrs) == 0 {
		return "", nil, errNoAddrs
	}
	return id, addrs, nil
}

// parseAddr accepts /ip4|ip6/A/tcp/P with an optional /p2p/id and returns it
// without /p2p.
func parseAddr(s string, id peer.ID, allowLoopback bool) (ma.Multiaddr, error) {
	if len(s) > maxTXTString {
		return nil, errBadAddr
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, err
	}
	ip, port, ok := splitTCP(m, id)
	if !ok {
		return nil, fmt.Errorf("%w %s", errBadAddr, m)
	}
	if err := checkIP(ip, allowLoopback); err != nil {
		return nil, err
	}
	return tcpAddr(ip, port), nil
}

// splitTCP returns the IP and port of /ip4|ip6/A/tcp/P, also accepting a
// trailing /p2p/id when id is not empty.
func splitTCP(m ma.Multiaddr, id peer.ID) (netip.Addr, uint16, bool) {
	if len(m) == 3 && id != "" && m[2].Code() == ma.P_P2P && peer.ID(m[2].RawValue()) == id {
		m = m[:2]
	}
	if len(m) != 2 || m[1].Code() != ma.P_TCP {
		return netip.Addr{}, 0, false
	}
	if c := m[0].Code(); c != ma.P_IP4 && c != ma.P_IP6 {
		return netip.Addr{}, 0, false
	}
	ip, ok := netip.AddrFromSlice(m[0].RawValue())
	if !ok {
		return netip.Addr{}, 0, false
	}
	raw := m[1].RawValue()
	if len(raw) != 2 {
		return netip.Addr{}, 0, false
	}
	port := uint16(raw[0])<<8 | uint16(raw[1])
	return ip.Unmap(), port, port != 0
}

// checkIP rejects addresses nobody can dial on the LAN.
func checkIP(ip netip.Addr, allowLoopback bool) error {
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsMulticast(),
		ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}),
		ip.Is6() && ip.IsLinkLocalUnicast(), // needs a zone
		ip.IsLoopback() && !allowLoopback:
		return fmt.Errorf("%w %s", errBadAddr, ip)
	}
	return nil
}

func tcpAddr(ip netip.Addr, port uint16) ma.Multiaddr {
	proto := "ip4"
	if ip.Is6() {
		proto = "ip6"
	}
	m, err := ma.NewMultiaddr("/" + proto + "/" + ip.String() + "/tcp/" + strconv.Itoa(int(port)))
	if err != nil {
		panic(err) // valid by construction
	}
	return m
}
