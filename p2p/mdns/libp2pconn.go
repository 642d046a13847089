package mdns

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// maxPacket bounds every packet read, as pion's reads are bounded.
const maxPacket = 9000

var (
	group4 = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	group6 = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353}
)

// libp2pConn speaks libp2p's mDNS format on its own sockets. pion cannot:
// it refuses TXT records with a repeated key and keeps only the first
// string of a key it receives, and libp2p repeats "dnsaddr" once per
// address. It answers PTR questions for _p2p._udp.local. and hands the
// peers of every libp2p answer it hears to found.
type libp2pConn struct {
	pc4      *ipv4.PacketConn
	pc6      *ipv6.PacketConn
	ifaces   []net.Interface
	loopback bool
	found    func(libp2pPeer) // must not block
	ann      atomic.Pointer[libp2pAnnouncement]
	wg       sync.WaitGroup
}

// newLibp2pConn joins the mDNS groups on ifaces and starts answering.
func newLibp2pConn(ifaces []net.Interface, loopback bool, ann *libp2pAnnouncement, found func(libp2pPeer)) (*libp2pConn, error) {
	pc4, pc6, err := listen()
	if err != nil {
		return nil, err
	}
	c := &libp2pConn{pc4: pc4, pc6: pc6, loopback: loopback, found: found}
	c.ann.Store(ann)
	for _, ifc := range ifaces {
		ok4 := pc4 != nil && pc4.JoinGroup(&ifc, group4) == nil
		ok6 := pc6 != nil && pc6.JoinGroup(&ifc, group6) == nil
		if ok4 || ok6 {
			c.ifaces = append(c.ifaces, ifc)
		}
	}
	if len(c.ifaces) == 0 {
		closeConns(pc4, pc6)
		return nil, ErrNoInterfaces
	}
	if pc4 != nil {
		pc4.SetControlMessage(ipv4.FlagInterface, true)
		pc4.SetMulticastLoopback(true)
		pc4.SetMulticastTTL(255)
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.read4() }()
	}
	if pc6 != nil {
		pc6.SetControlMessage(ipv6.FlagInterface, true)
		pc6.SetMulticastLoopback(true)
		pc6.SetMulticastHopLimit(255)
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.read6() }()
	}
	return c, nil
}

// setAnnouncement replaces what the node answers.
func (c *libp2pConn) setAnnouncement(a *libp2pAnnouncement) { c.ann.Store(a) }

// query sends the PTR question on every interface.
func (c *libp2pConn) query() {
	q := libp2pQuery()
	for _, ifc := range c.ifaces {
		if c.pc4 != nil {
			c.pc4.WriteTo(q, &ipv4.ControlMessage{IfIndex: ifc.Index}, group4)
		}
		if c.pc6 != nil {
			c.pc6.WriteTo(q, &ipv6.ControlMessage{IfIndex: ifc.Index}, group6)
		}
	}
}

func (c *libp2pConn) close() {
	closeConns(c.pc4, c.pc6)
	c.wg.Wait()
}

func (c *libp2pConn) read4() {
	buf := make([]byte, maxPacket)
	for {
		n, cm, src, err := c.pc4.ReadFrom(buf)
		if err != nil {
			return
		}
		if cm == nil {
			continue
		}
		c.handle(buf[:n], cm.IfIndex, src, group4, func(b []byte, dst net.Addr) {
			c.pc4.WriteTo(b, &ipv4.ControlMessage{IfIndex: cm.IfIndex}, dst)
		})
	}
}

func (c *libp2pConn) read6() {
	buf := make([]byte, maxPacket)
	for {
		n, cm, src, err := c.pc6.ReadFrom(buf)
		if err != nil {
			return
		}
		if cm == nil {
			continue
		}
		c.handle(buf[:n], cm.IfIndex, src, group6, func(b []byte, dst net.Addr) {
			c.pc6.WriteTo(b, &ipv6.ControlMessage{IfIndex: cm.IfIndex}, dst)
		})
	}
}

// handle answers a question on an interface of ours, or reports the
// peers of an answer.
func (c *libp2pConn) handle(b []byte, ifIndex int, src net.Addr, group *net.UDPAddr, write func([]byte, net.Addr)) {
	ifc := c.iface(ifIndex)
	if ifc == nil {
		return
	}
	pkt, err := parseLibp2p(b, c.loopback)
	if err != nil {
		return
	}
	if !pkt.query {
		for _, p := range pkt.peers {
			c.found(p)
		}
		return
	}
	ua, _ := src.(*net.UDPAddr)
	legacy := ua != nil && ua.Port != 5353 // RFC 6762 §6.7: a plain DNS resolver
	var id uint16
	var q *dnsmessage.Question
	if legacy {
		id, q = pkt.id, &pkt.question
	}
	out, err := c.ann.Load().pack(id, q, ifaceIPs(ifc))
	if err != nil {
		return
	}
	dst := net.Addr(group)
	if legacy || pkt.unicast {
		dst = src
	}
	write(out, dst)
}

func (c *libp2pConn) iface(index int) *net.Interface {
	for i := range c.ifaces {
		if c.ifaces[i].Index == index {
			return &c.ifaces[i]
		}
	}
	return nil
}

// ifaceIPs returns up to 4 addresses of ifc for A and AAAA records, of
// both families whatever the question came over (zeroconf wants one in
// every answer); IPv6 link-local ones are left out (they need a zone).
func ifaceIPs(ifc *net.Interface) []netip.Addr {
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		if !(ip.Is6() && ip.IsLinkLocalUnicast()) && len(out) < 4 {
			out = append(out, ip)
		}
	}
	return out
}
