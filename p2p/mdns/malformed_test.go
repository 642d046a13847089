package mdns

import (
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/ipv4"

	"github.com/share-p2p/share/p2p/peer"
)

// forge builds an unsolicited DNS-SD response as a hostile responder could.
func forge(t *testing.T, svcType, instance string, port uint16, a [4]byte, txt ...string) []byte {
	t.Helper()
	name := func(s string) dnsmessage.Name { return dnsmessage.MustNewName(s) }
	inst := instance + "." + svcType + ".local."
	host := "forged.local."
	hdr := func(n string, typ dnsmessage.Type) dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: name(n), Type: typ, Class: dnsmessage.ClassINET, TTL: 120}
	}
	msg := dnsmessage.Message{
		Header: dnsmessage.Header{Response: true, Authoritative: true},
		Answers: []dnsmessage.Resource{
			{Header: hdr(svcType+".local.", dnsmessage.TypePTR), Body: &dnsmessage.PTRResource{PTR: name(inst)}},
		},
		Additionals: []dnsmessage.Resource{
			{Header: hdr(inst, dnsmessage.TypeSRV), Body: &dnsmessage.SRVResource{Target: name(host), Port: port}},
			{Header: hdr(inst, dnsmessage.TypeTXT), Body: &dnsmessage.TXTResource{TXT: txt}},
			{Header: hdr(host, dnsmessage.TypeA), Body: &dnsmessage.AResource{A: a}},
		},
	}
	b, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendMulticast sends packets to the mDNS group on the namespace's loopback.
func sendMulticast(t *testing.T, ns *netns, pkts ...[]byte) {
	t.Helper()
	var err error
	ns.do(func() {
		var c *net.UDPConn
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return
		}
		defer c.Close()
		p := ipv4.NewPacketConn(c)
		lo, _ := net.InterfaceByName("lo")
		if err = p.SetMulticastInterface(lo); err != nil {
			return
		}
		for _, b := range pkts {
			if _, err = p.WriteTo(b, nil, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}); err != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMalformedPacketsIgnored(t *testing.T) {
	ns := newNetns(t)
	n := startNode(t, ns, "share")
	st := serviceType("share")
	lo := [4]byte{127, 0, 0, 1}
	bad := make([]peer.ID, 6)
	for i := range bad {
		bad[i] = newID(t)
	}
	good := newID(t)
	p2p := func(id peer.ID) string { return "/p2p/" + id.String() }
	truncated := forge(t, st, bad[0].String(), 7000, lo, "net=share")
	sendMulticast(t, ns,
		[]byte("not a dns packet at all"),
		[]byte{0, 0, 0x84, 0, 0, 0, 0, 5, 0, 0, 0, 0}, // claims 5 answers, has none
		truncated[:len(truncated)-9],
		forge(t, st, "not-a-peer-id", 7000, lo, "net=share"),
		forge(t, st, bad[1].String(), 7000, lo, "net=other"),
		forge(t, st, bad[2].String(), 7000, lo), // no net key
		forge(t, st, bad[3].String(), 0, [4]byte{0, 0, 0, 0}, "net=share",
			"addr0=/ip4/224.0.0.1/tcp/1"+p2p(bad[3]), "addr1=/ip4/127.0.0.1/udp/5"+p2p(bad[3])),
		forge(t, st, bad[4].String(), 0, lo, "net=share", "addr0=/ip4/127.0.0.1/tcp/7777"+p2p(good)),
		forge(t, serviceType("other"), bad[5].String(), 7000, lo, "net=share"),
		forge(t, st, n.id.String(), 7000, lo, "net=share"), // itself
		forge(t, st, good.String(), 9999, lo, "net=share", "addr0=/ip4/127.0.0.1/tcp/9999"+p2p(good)),
	)
	select {
	case id := <-n.finds.ch:
		if id != good {
			t.Fatalf("reported %s (bad %d), want only the well-formed instance %s", id, slices.Index(bad, id), good)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("well-formed forged instance not reported: the injection path is broken")
	}
	n.finds.mu.Lock()
	addrs := n.finds.peers[good]
	n.finds.mu.Unlock()
	if len(addrs) != 1 || addrs[0].String() != "/ip4/127.0.0.1/tcp/9999" {
		t.Errorf("addrs = %v", addrs)
	}
	// The service still works after all that.
	other := startNode(t, ns, "share")
	waitFind(t, other, 2*time.Second, n)
	if ids := n.finds.ids(); len(ids) > 2 {
		t.Errorf("found %d peers: %v", len(ids), ids)
	}
}
