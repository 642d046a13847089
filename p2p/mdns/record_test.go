package mdns

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	pion "github.com/pion/mdns/v2"

	"github.com/share-p2p/share/p2p/peer"
)

func TestServiceTypeIsValidDNSSD(t *testing.T) {
	for _, network := range []string{"share", "a", strings.Repeat("x", 64), "my.lab_net-1"} {
		st := serviceType(network)
		label, proto, _ := strings.Cut(st, ".")
		if proto != "_udp" || len(label)-1 > 15 || !strings.HasPrefix(label, "_share-") {
			t.Errorf("serviceType(%q) = %q", network, st)
		}
	}
	if serviceType("alpha") == serviceType("beta") {
		t.Error("two networks share a service type")
	}
	if len(hostName(newID(t))) > 63 {
		t.Error("host name too long")
	}
}

func TestMakeRecord(t *testing.T) {
	id := newID(t)
	addrs := []ma.Multiaddr{
		ma.StringCast("/ip4/0.0.0.0/tcp/4001"),
		ma.StringCast("/ip6/::/tcp/4001"),
		ma.StringCast("/ip4/192.0.2.7/tcp/4002"),
		ma.StringCast("/ip4/192.0.2.7/udp/4003/quic-v1"),
		ma.StringCast("/ip6/2001:db8::1/tcp/4004/p2p/" + id.String()),
		ma.StringCast("/ip4/127.0.0.1/tcp/4005"),
	}
	r := makeRecord("share", id, addrs)
	if r.port != 4001 {
		t.Errorf("port = %d, want 4001", r.port)
	}
	want := []string{
		"net=share",
		"addr0=/ip4/192.0.2.7/tcp/4002/p2p/" + id.String(),
		"addr1=/ip6/2001:db8::1/tcp/4004/p2p/" + id.String(),
		"addr2=/ip4/127.0.0.1/tcp/4005/p2p/" + id.String(),
	}
	var got []string
	for _, e := range r.text {
		got = append(got, e.Key+"="+string(e.Value))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("text =\n%q\nwant\n%q", got, want)
	}
	// What is announced must be accepted.
	ev := pion.ServiceEvent{Instance: r.instance("share", id), Addr: netip.MustParseAddr("192.0.2.7")}
	gotID, gotAddrs, err := parseEvent("share", ev, false)
	if err != nil || gotID != id {
		t.Fatalf("parseEvent = %v, %v", gotID, err)
	}
	if len(gotAddrs) != 3 { // 4002, 2001:db8::1 4004, and the A address with the SRV port
		t.Errorf("addrs = %v", gotAddrs)
	}
	// Many addresses: at most maxAnnouncedAddrs.
	var many []ma.Multiaddr
	for i := range 20 {
		many = append(many, tcpAddr(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 1))
	}
	if r := makeRecord("share", id, many); len(r.text) != 1+maxAnnouncedAddrs {
		t.Errorf("%d TXT entries, want %d", len(r.text), 1+maxAnnouncedAddrs)
	}
}

func TestParseEvent(t *testing.T) {
	id, other := newID(t), newID(t)
	p2p := "/p2p/" + id.String()
	event := func(instance string, port uint16, addr string, txt ...string) pion.ServiceEvent {
		ev := pion.ServiceEvent{Instance: pion.ServiceInstance{Instance: instance, Service: serviceType("share"), Port: port}}
		if addr != "" {
			ev.Addr = netip.MustParseAddr(addr)
		}
		for _, s := range txt {
			k, v, _ := strings.Cut(s, "=")
			ev.Instance.Text = append(ev.Instance.Text, pion.NewTXTString(k, v))
		}
		return ev
	}
	tests := []struct {
		name     string
		ev       pion.ServiceEvent
		loopback bool
		want     []string // nil: error
	}{
		{"srv and A", event(id.String(), 4001, "192.0.2.1", "net=share"), false, []string{"/ip4/192.0.2.1/tcp/4001"}},
		{"txt addr", event(id.String(), 0, "", "net=share", "addr0=/ip4/192.0.2.2/tcp/5"+p2p), false, []string{"/ip4/192.0.2.2/tcp/5"}},
		{"txt addr without p2p", event(id.String(), 0, "", "net=share", "addr0=/ip6/2001:db8::2/tcp/5"), false, []string{"/ip6/2001:db8::2/tcp/5"}},
		{"dedup", event(id.String(), 5, "192.0.2.2", "net=share", "addr0=/ip4/192.0.2.2/tcp/5"+p2p), false, []string{"/ip4/192.0.2.2/tcp/5"}},
		{"unknown keys ignored", event(id.String(), 7, "192.0.2.1", "net=share", "x=y", "flag"), false, []string{"/ip4/192.0.2.1/tcp/7"}},
		{"loopback allowed", event(id.String(), 7, "127.0.0.1", "net=share"), true, []string{"/ip4/127.0.0.1/tcp/7"}},
		{"loopback refused", event(id.String(), 7, "127.0.0.1", "net=share"), false, nil},
		{"other network", event(id.String(), 7, "192.0.2.1", "net=other"), false, nil},
		{"network case", event(id.String(), 7, "192.0.2.1", "net=Share"), false, nil},
		{"no network", event(id.String(), 7, "192.0.2.1"), false, nil},
		{"other service", func() pion.ServiceEvent {
			ev := event(id.String(), 7, "192.0.2.1", "net=share")
			ev.Instance.Service = "_http._tcp"
			return ev
		}(), false, nil},
		{"service case", func() pion.ServiceEvent {
			ev := event(id.String(), 7, "192.0.2.1", "net=share")
			ev.Instance.Service = strings.ToUpper(ev.Instance.Service)
			return ev
		}(), false, []string{"/ip4/192.0.2.1/tcp/7"}},
		{"bad id", event("12D3KooWnotanid", 7, "192.0.2.1", "net=share"), false, nil},
		{"lowercased id", event(strings.ToLower(id.String()), 7, "192.0.2.1", "net=share"), false, nil},
		{"port zero", event(id.String(), 0, "192.0.2.1", "net=share"), false, nil},
		{"unspecified", event(id.String(), 7, "0.0.0.0", "net=share", "addr0=/ip6/::/tcp/5"), false, nil},
		{"multicast", event(id.String(), 7, "224.0.0.251", "net=share", "addr0=/ip6/ff02::fb/tcp/5"), false, nil},
		{"broadcast", event(id.String(), 0, "", "net=share", "addr0=/ip4/255.255.255.255/tcp/5"), false, nil},
		{"link-local v6", event(id.String(), 7, "fe80::1", "net=share"), false, nil},
		{"udp", event(id.String(), 0, "", "net=share", "addr0=/ip4/192.0.2.2/udp/5"), false, nil},
		{"extra component", event(id.String(), 0, "", "net=share", "addr0=/ip4/192.0.2.2/tcp/5/ws"), false, nil},
		{"dns", event(id.String(), 0, "", "net=share", "addr0=/dns4/example.com/tcp/5"), false, nil},
		{"other p2p", event(id.String(), 0, "", "net=share", "addr0=/ip4/192.0.2.2/tcp/5/p2p/"+other.String()), false, nil},
		{"tcp port zero", event(id.String(), 0, "", "net=share", "addr0=/ip4/192.0.2.2/tcp/0"), false, nil},
		{"garbage addr", event(id.String(), 0, "", "net=share", "addr0=/ip4/nope"), false, nil},
		{"bad addr, good srv", event(id.String(), 9, "192.0.2.9", "net=share", "addr0=junk"), false, []string{"/ip4/192.0.2.9/tcp/9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotID, addrs, err := parseEvent("share", tt.ev, tt.loopback)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("parseEvent = %s %v, want error", gotID, addrs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gotID != id {
				t.Errorf("id = %s", gotID)
			}
			var got []string
			for _, a := range addrs {
				got = append(got, a.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("addrs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseEventLimits(t *testing.T) {
	id := newID(t)
	ev := pion.ServiceEvent{Instance: pion.ServiceInstance{Instance: id.String(), Service: serviceType("share")}}
	ev.Instance.Text = append(ev.Instance.Text, pion.NewTXTString("net", "share"))
	for i := range 30 {
		ev.Instance.Text = append(ev.Instance.Text, pion.NewTXTString("addr"+string(rune('a'+i)),
			tcpAddr(netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), 1).String()))
	}
	_, addrs, err := parseEvent("share", ev, false)
	if err != nil || len(addrs) != maxAddrsPerPeer {
		t.Errorf("%d addrs, %v; want %d", len(addrs), err, maxAddrsPerPeer)
	}
	for range 10 {
		ev.Instance.Text = append(ev.Instance.Text, pion.NewTXTFlag("x"))
	}
	if _, _, err := parseEvent("share", ev, false); err == nil {
		t.Errorf("%d TXT strings accepted", len(ev.Instance.Text))
	}
}

func TestRemember(t *testing.T) {
	peers := map[peer.ID]*seen{}
	id := newID(t)
	a1, a2 := ma.StringCast("/ip4/192.0.2.1/tcp/1"), ma.StringCast("/ip4/192.0.2.2/tcp/1")
	now := time.Now()
	steps := []struct {
		addrs  []ma.Multiaddr
		at     time.Duration
		report int // addresses reported, 0 = not reported
	}{
		{[]ma.Multiaddr{a1}, 0, 1},
		{[]ma.Multiaddr{a1}, time.Second, 0},
		{[]ma.Multiaddr{a2}, 2 * time.Second, 2},
		{[]ma.Multiaddr{a1, a2}, 3 * time.Second, 0},
		{[]ma.Multiaddr{a1}, 3*time.Second + reReport, 2},
	}
	for i, s := range steps {
		all, ok := remember(peers, id, s.addrs, now.Add(s.at))
		if ok != (s.report > 0) || len(all) != s.report {
			t.Errorf("step %d: reported %v with %v", i, ok, all)
		}
	}
	for range maxPeers + 10 {
		remember(peers, newID(t), []ma.Multiaddr{a1}, now)
	}
	if len(peers) != maxPeers {
		t.Errorf("%d peers remembered, want %d", len(peers), maxPeers)
	}
}

// txtStrings splits TXT rdata (length-prefixed strings) the way a DNS
// decoder does, then into entries as pion does (first key wins).
func txtEntries(rdata []byte) []pion.TXTEntry {
	var out []pion.TXTEntry
	keys := map[string]bool{}
	for len(rdata) > 0 {
		n := int(rdata[0])
		if n+1 > len(rdata) {
			break
		}
		s := rdata[1 : 1+n]
		rdata = rdata[1+n:]
		k, v, found := bytes.Cut(s, []byte("="))
		if len(k) == 0 || keys[strings.ToLower(string(k))] {
			continue
		}
		keys[strings.ToLower(string(k))] = true
		e := pion.TXTEntry{Key: string(k)}
		if found {
			e.Value = v
		}
		out = append(out, e)
	}
	return out
}

func txtRdata(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return b
}

// FuzzParse feeds arbitrary instance names, TXT data, addresses and ports,
// as a malicious responder could announce them, to the record parser.
func FuzzParse(f *testing.F) {
	id := "12D3KooWGzBeQAkhk6zMLp9zsgAPMfNnVZ8ukzv7V5sYUC7dzXDE"
	p2p := "/p2p/" + id
	f.Add(id, txtRdata("net=share", "addr0=/ip4/192.0.2.1/tcp/4001"+p2p), []byte{192, 0, 2, 1}, uint16(4001), false)
	f.Add(id, txtRdata("net=share", "addr0=/ip6/2001:db8::1/tcp/1"), []byte{127, 0, 0, 1}, uint16(1), true)
	f.Add(id, txtRdata("net=share", "addr0=/ip4/1.2.3.4/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"), []byte{}, uint16(0), false)
	f.Add(id, txtRdata("net=other"), []byte{10, 0, 0, 1}, uint16(1), false)
	f.Add("x", txtRdata("net=share", "=", "addr0", "addr1="), net16(), uint16(9), false)
	f.Add(id, []byte{5, 'n', 'e', 't', '=', 's', 200}, []byte{1, 2, 3}, uint16(2), false)
	st := serviceType("share")
	f.Add(id, txtRdata("net=share"), []byte{10, 0, 0, 1}, uint16(1), false)
	f.Fuzz(func(t *testing.T, instance string, txt, ip []byte, port uint16, loopback bool) {
		service := st
		if port%7 == 3 { // sometimes another service type
			service = "_http._tcp"
		}
		ev := pion.ServiceEvent{Instance: pion.ServiceInstance{Instance: instance, Service: service, Port: port, Text: txtEntries(txt)}}
		ev.Addr, _ = netip.AddrFromSlice(ip)
		gotID, addrs, err := parseEvent("share", ev, loopback)
		if err != nil {
			return
		}
		if gotID.Validate() != nil || gotID.String() != instance {
			t.Fatalf("accepted id %q from instance %q", gotID, instance)
		}
		if len(addrs) == 0 || len(addrs) > maxAddrsPerPeer {
			t.Fatalf("%d addrs", len(addrs))
		}
		for i, a := range addrs {
			ip, _, ok := splitTCP(a, "")
			if !ok || checkIP(ip, loopback) != nil {
				t.Fatalf("accepted address %s", a)
			}
			for _, b := range addrs[:i] {
				if a.Equal(b) {
					t.Fatalf("duplicate address %s", a)
				}
			}
		}
	})
}

func net16() []byte { return netip.MustParseAddr("2001:db8::7").AsSlice() }
