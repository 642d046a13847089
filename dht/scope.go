package dht

import (
	"net"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Scope says which peers and addresses a DHT deals in. Kubo runs two
// DHTs side by side (go-libp2p-kad-dht's dual package): the WAN one on
// /ipfs/kad/1.0.0 for peers with public addresses, and the LAN one on
// /ipfs/lan/kad/1.0.0 for peers on private networks; a node on network
// ipfs runs both to meet kubo in each (see Dual).
type Scope int

const (
	// ScopeAll keeps every sane address: one DHT for the LAN and beyond
	// (share's networks).
	ScopeAll Scope = iota
	// ScopeWAN keeps public addresses only, in the table, in lookups,
	// in provider records and in what it says of itself, as kubo's WAN
	// DHT does; a peer with none is neither queried nor kept.
	ScopeWAN
	// ScopeLAN keeps every sane address but admits to the routing table
	// only peers that have a private one (RFC 1918, CGNAT, loopback,
	// link-local, IPv6 outside 2000::/3), as kubo's LAN DHT admits peers
	// whose connection comes from a private address. Kubo's also strips
	// loopback addresses from what it stores and sends; ours keeps them
	// (they are what tests on one machine have), kubo drops them on
	// receipt.
	ScopeLAN
)

func (s Scope) String() string { return [...]string{"all", "wan", "lan"}[s] }

// Filter returns the addresses of addrs the scope deals in: the sane
// ones, and for ScopeWAN only the public ones among them.
func (s Scope) Filter(addrs []ma.Multiaddr) []ma.Multiaddr {
	out := SaneAddrs(addrs)
	if s != ScopeWAN {
		return out
	}
	pub := out[:0]
	for _, a := range out {
		if isPublic(a) {
			pub = append(pub, a)
		}
	}
	return pub
}

// Admits reports whether a peer with addrs (already filtered) may enter
// the routing table.
func (s Scope) Admits(addrs []ma.Multiaddr) bool {
	if s != ScopeLAN {
		return len(addrs) > 0
	}
	for _, a := range addrs {
		if isPrivate(a) {
			return true
		}
	}
	return false
}

// public6 is where kad-dht looks for public IPv6 addresses: 2000::/3,
// the global unicast space, stricter than manet.IsPublicAddr.
var public6 = &net.IPNet{IP: net.IP{0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Mask: net.CIDRMask(3, 128)}

// isPublic is kad-dht's isPublicAddr: IPv4 neither private nor
// unroutable, IPv6 in 2000::/3.
func isPublic(a ma.Multiaddr) bool {
	ip := ipOf(a)
	if ip.To4() != nil {
		return !inNets(ip, manet.Private4) && !inNets(ip, manet.Unroutable4)
	}
	return ip != nil && public6.Contains(ip)
}

// isPrivate is kad-dht's isPrivateAddr: IPv4 private (loopback
// included), IPv6 outside 2000::/3 and not unroutable.
func isPrivate(a ma.Multiaddr) bool {
	ip := ipOf(a)
	if ip.To4() != nil {
		return inNets(ip, manet.Private4)
	}
	return ip != nil && !public6.Contains(ip) && !inNets(ip, manet.Unroutable6)
}

// ipOf returns the IP of a sane address, nil of any other.
func ipOf(a ma.Multiaddr) net.IP {
	if len(a) == 0 || a[0].Code() != ma.P_IP4 && a[0].Code() != ma.P_IP6 {
		return nil
	}
	return net.IP(a[0].RawValue())
}

func inNets(ip net.IP, nets []*net.IPNet) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
