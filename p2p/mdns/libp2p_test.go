package mdns

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/net/dns/dnsmessage"
)

// kuboID is the node that sent the packets of testdata/kubo.
const kuboID = "12D3KooWNuG8RT9139dVXW8gxBgWWfWbfmeNrYxd9YtujqcF2Xpk"

func kuboPacket(t testing.TB, name string) []byte {
	t.Helper()
	h, err := os.ReadFile(filepath.Join("testdata", "kubo", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(h)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseKuboPackets reads what kubo 0.43 sent in a namespace.
func TestParseKuboPackets(t *testing.T) {
	for _, name := range []string{"answer", "announce"} {
		pkt, err := parseLibp2p(kuboPacket(t, name), true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if pkt.query || len(pkt.peers) != 1 || pkt.peers[0].id.String() != kuboID {
			t.Fatalf("%s: %+v", name, pkt)
		}
		if got := pkt.peers[0].addrs; len(got) != 1 || got[0].String() != "/ip4/127.0.0.1/tcp/44001" {
			t.Errorf("%s: addrs %v", name, got)
		}
		// Loopback addresses count only where the Service allows them.
		if _, err := parseLibp2p(kuboPacket(t, name), false); !errors.Is(err, errNotLibp2p) {
			t.Errorf("%s without loopback: %v", name, err)
		}
	}
	q, err := parseLibp2p(kuboPacket(t, "query"), false)
	if err != nil || !q.query || q.unicast {
		t.Errorf("query: %+v, %v", q, err)
	}
	// A probe asks for kubo's own instance: nothing to answer.
	if p, err := parseLibp2p(kuboPacket(t, "probe"), true); !errors.Is(err, errNotLibp2p) || p.query {
		t.Errorf("probe: %+v, %v", p, err)
	}
}

func TestLibp2pTXT(t *testing.T) {
	id := newID(t)
	p := "/p2p/" + id.String()
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{[]string{"/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"}, nil},
		{[]string{"/ip4/10.77.0.1/tcp/4001"}, []string{"/ip4/10.77.0.1/tcp/4001" + p}},
		{[]string{"/ip4/10.77.0.1/tcp/4001" + p, "/ip4/10.77.0.1/tcp/4001"}, []string{"/ip4/10.77.0.1/tcp/4001" + p}},
		{[]string{"/ip4/10.77.0.1/udp/4001/quic-v1", "/ip6/fe80::1/tcp/4001", "/ip4/224.0.0.1/tcp/1"}, nil},
		{[]string{"/ip4/127.0.0.1/tcp/5", "/ip6/2001:db8::1/tcp/6"}, []string{"/ip4/127.0.0.1/tcp/5" + p, "/ip6/2001:db8::1/tcp/6" + p}},
	} {
		var addrs []ma.Multiaddr
		for _, s := range tc.in {
			addrs = append(addrs, ma.StringCast(s))
		}
		var want []string
		for _, s := range tc.want {
			want = append(want, dnsaddrPrefix+s)
		}
		if got := libp2pTXT(id, addrs); !slices.Equal(got, want) {
			t.Errorf("libp2pTXT(%v) =\n%q\nwant\n%q", tc.in, got, want)
		}
	}
	var many []ma.Multiaddr
	for i := range 20 {
		many = append(many, tcpAddr(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 4001))
	}
	if got := libp2pTXT(id, many); len(got) != maxAnnouncedAddrs {
		t.Errorf("%d addresses announced, want %d", len(got), maxAnnouncedAddrs)
	}
}

// TestLibp2pRoundTrip: what a Service answers is read back as the same
// peer, every address of the repeated key included, as zeroconf needs it.
func TestLibp2pRoundTrip(t *testing.T) {
	id := newID(t)
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/10.77.0.1/tcp/4001"), ma.StringCast("/ip6/2001:db8::1/tcp/4002"), ma.StringCast("/ip4/192.168.1.9/tcp/4003")}
	ann := &libp2pAnnouncement{instance: randomLabel(), host: randomLabel(), port: 4001, txt: libp2pTXT(id, addrs)}
	q := dnsmessage.Question{Name: libp2pServiceName, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET}
	for _, legacy := range []bool{false, true} {
		var qp *dnsmessage.Question
		if legacy {
			qp = &q
		}
		b, err := ann.pack(7, qp, []netip.Addr{netip.MustParseAddr("10.77.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		pkt, err := parseLibp2p(b, false)
		if err != nil || len(pkt.peers) != 1 || pkt.peers[0].id != id {
			t.Fatalf("parse: %+v, %v", pkt, err)
		}
		if !slices.EqualFunc(pkt.peers[0].addrs, addrs, ma.Multiaddr.Equal) {
			t.Errorf("addrs %v, want %v", pkt.peers[0].addrs, addrs)
		}
		checkZeroconfShape(t, b)
	}
	if n := len(randomLabel()); n < 32 || n > 63 {
		t.Errorf("instance name of %d characters", n)
	}
	if randomLabel() == randomLabel() {
		t.Error("instance names repeat")
	}
}

// checkZeroconfShape checks what zeroconf needs to report an instance:
// the PTR of the service, SRV and TXT of the instance, and an address
// record named exactly as the SRV target.
func checkZeroconfShape(t *testing.T, b []byte) {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	var inst, target string
	var hasA bool
	for _, r := range append(m.Answers, m.Additionals...) {
		switch body := r.Body.(type) {
		case *dnsmessage.PTRResource:
			if r.Header.Name.String() == libp2pService {
				inst = body.PTR.String()
			}
		case *dnsmessage.SRVResource:
			if r.Header.Name.String() == inst {
				target = body.Target.String()
			}
		case *dnsmessage.AResource:
			hasA = hasA || r.Header.Name.String() == target
		}
	}
	if inst == "" || target == "" || !hasA {
		t.Errorf("answer lacks PTR, SRV or A: %v", m.GoString())
	}
}

func TestParseLibp2pRejects(t *testing.T) {
	id, other := newID(t), newID(t)
	good := "dnsaddr=/ip4/10.0.0.1/tcp/1/p2p/" + id.String()
	for _, tc := range []struct {
		name string
		txt  []string
		want int // addresses kept
	}{
		{"good", []string{good}, 1},
		{"no /p2p", []string{"dnsaddr=/ip4/10.0.0.1/tcp/1"}, 0},
		{"other key", []string{"addr0=/ip4/10.0.0.1/tcp/1/p2p/" + id.String()}, 0},
		{"udp", []string{"dnsaddr=/ip4/10.0.0.1/udp/1/quic-v1/p2p/" + id.String()}, 0},
		{"port 0", []string{"dnsaddr=/ip4/10.0.0.1/tcp/0/p2p/" + id.String()}, 0},
		{"second peer ignored", []string{good, "dnsaddr=/ip4/10.0.0.2/tcp/1/p2p/" + other.String()}, 1},
		{"duplicates", []string{good, good, good}, 1},
		{"garbage", []string{"dnsaddr=/ip4/300.0.0.1/tcp/1", "dnsaddr=", "dnsaddr"}, 0},
	} {
		ann := &libp2pAnnouncement{instance: randomLabel(), host: randomLabel(), txt: tc.txt}
		b, err := ann.pack(0, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		pkt, err := parseLibp2p(b, false)
		got := 0
		if err == nil {
			got = len(pkt.peers[0].addrs)
		}
		if got != tc.want {
			t.Errorf("%s: %d addresses (%v), want %d", tc.name, got, err, tc.want)
		}
	}
	// Too many records: the packet is dropped.
	var txt []string
	for i := range maxAddrsPerPeer + 5 {
		txt = append(txt, "dnsaddr="+tcpAddr(netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), 1).String()+"/p2p/"+id.String())
	}
	ann := &libp2pAnnouncement{instance: randomLabel(), host: randomLabel(), txt: txt}
	b, _ := ann.pack(0, nil, nil)
	if pkt, err := parseLibp2p(b, false); err != nil || len(pkt.peers[0].addrs) != maxAddrsPerPeer {
		t.Errorf("%d addresses kept of %d", len(pkt.peers[0].addrs), len(txt))
	}
	ips := make([]netip.Addr, maxLibp2pRecords)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{10, 0, 2, byte(i)})
	}
	b, _ = (&libp2pAnnouncement{instance: "a", host: "b", txt: []string{good}}).pack(0, nil, ips)
	if _, err := parseLibp2p(b, false); err == nil {
		t.Error("a packet of too many records was read")
	}
}

// FuzzParseLibp2p: no packet makes the parser panic, and every peer it
// reports has a valid ID and usable, bounded addresses.
func FuzzParseLibp2p(f *testing.F) {
	for _, name := range []string{"query", "answer", "probe", "announce"} {
		f.Add(kuboPacket(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pkt, err := parseLibp2p(b, true)
		if err != nil {
			return
		}
		if len(pkt.peers) > maxLibp2pInstances {
			t.Fatalf("%d peers", len(pkt.peers))
		}
		for _, p := range pkt.peers {
			if p.id.Validate() != nil || len(p.addrs) == 0 || len(p.addrs) > maxAddrsPerPeer {
				t.Fatalf("bad peer %+v", p)
			}
			for _, a := range p.addrs {
				if _, _, ok := splitTCP(a, ""); !ok {
					t.Fatalf("bad address %v", a)
				}
			}
		}
	})
}
