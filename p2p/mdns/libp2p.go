package mdns

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/share-p2p/share/p2p/peer"
)

// libp2p's mDNS format (libp2p/specs discovery/mdns.md), as go-libp2p's
// p2p/discovery/mdns (zeroconf) writes and reads it.
const (
	libp2pService = "_p2p._udp.local."
	dnsaddrPrefix = "dnsaddr="
	// The TTLs kubo 0.43 (zeroconf) sends, which we send too: 3200 s for
	// PTR, SRV and TXT, 120 s for A and AAAA (testdata/kubo).
	libp2pTTL     = 3200
	libp2pHostTTL = 120
	// Limits on what one packet may make us do.
	maxLibp2pInstances = 16 // instances read from one packet
	maxLibp2pTXT       = 64 // TXT strings read from one instance
	maxLibp2pRecords   = 64 // resource records read from one packet
)

var (
	libp2pServiceName = dnsmessage.MustNewName(libp2pService)
	errNotLibp2p      = errors.New("not a libp2p mDNS packet")
)

// randomLabel returns a random DNS label of 32 to 63 lowercase letters and
// digits: the spec wants instance names random, so that they say nothing
// about the node, and go-libp2p draws them the same way.
func randomLabel() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [64]byte
	rand.Read(b[:])
	n := 32 + int(b[0])%32
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[int(b[i+1])%len(alphabet)]
	}
	return string(out)
}

// libp2pTXT returns the TXT strings node id announces: one
// "dnsaddr=/ip4|ip6/A/tcp/P/p2p/ID" per listen address a receiver would
// accept, at most maxAnnouncedAddrs, each within a character-string.
func libp2pTXT(id peer.ID, addrs []ma.Multiaddr) []string {
	p2p, err := ma.NewComponent("p2p", id.String())
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		ip, port, ok := splitTCP(a, id)
		if !ok || len(out) == maxAnnouncedAddrs || checkIP(ip, true) != nil {
			continue
		}
		s := dnsaddrPrefix + tcpAddr(ip, port).Encapsulate(p2p).String()
		if len(s) <= maxTXTString && !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// libp2pQuery is the question a browse sends: PTR _p2p._udp.local., asking
// for a multicast answer (no QU bit) as go-libp2p does.
func libp2pQuery() []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: libp2pServiceName, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET})
	msg, err := b.Finish()
	if err != nil {
		panic(err) // a fixed question always packs
	}
	return msg
}

// libp2pAnnouncement is what a Service answers in libp2p's format: the PTR
// in the answer section and, in the additional section (RFC 6763 §12.1),
// SRV, TXT and the host's addresses on the interface the question came
// in on. zeroconf reports an instance only with an A or AAAA record for
// its SRV target in the same packet; libp2p itself reads only the TXT.
type libp2pAnnouncement struct {
	instance string // random label
	host     string // random label: SRV target host.local.
	port     uint16 // SRV port: first listen port (libp2p ignores it)
	txt      []string
}

// pack builds the answer; id and question are set for a legacy unicast
// answer (RFC 6762 §6.7), zero otherwise.
func (a *libp2pAnnouncement) pack(id uint16, q *dnsmessage.Question, ips []netip.Addr) ([]byte, error) {
	inst, err := dnsmessage.NewName(a.instance + "." + libp2pService)
	if err != nil {
		return nil, err
	}
	host, err := dnsmessage.NewName(a.host + ".local.")
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: true, Authoritative: true})
	b.EnableCompression()
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if q != nil {
		add(b.StartQuestions())
		add(b.Question(*q))
	}
	hdr := func(name dnsmessage.Name, ttl uint32) dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: ttl}
	}
	add(b.StartAnswers())
	add(b.PTRResource(hdr(libp2pServiceName, libp2pTTL), dnsmessage.PTRResource{PTR: inst}))
	add(b.StartAdditionals())
	add(b.SRVResource(hdr(inst, libp2pTTL), dnsmessage.SRVResource{Target: host, Port: a.port}))
	txt := a.txt
	if len(txt) == 0 {
		txt = []string{""} // a TXT record has at least one string
	}
	add(b.TXTResource(hdr(inst, libp2pTTL), dnsmessage.TXTResource{TXT: txt}))
	for _, ip := range ips {
		if ip.Is4() {
			add(b.AResource(hdr(host, libp2pHostTTL), dnsmessage.AResource{A: ip.As4()}))
		} else {
			add(b.AAAAResource(hdr(host, libp2pHostTTL), dnsmessage.AAAAResource{AAAA: ip.As16()}))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b.Finish()
}

// libp2pPacket is what one packet says in libp2p's format.
type libp2pPacket struct {
	// query: it asks for PTR _p2p._udp.local.; unicast: with the QU bit.
	query, unicast bool
	id             uint16
	question       dnsmessage.Question
	// peers are the peers its TXT records announce (responses only).
	peers []libp2pPeer
}

type libp2pPeer struct {
	id    peer.ID
	addrs []ma.Multiaddr // transport addresses, without /p2p
}

// parseLibp2p reads one mDNS packet: a question for the libp2p service,
// or the peers of the _p2p._udp instances whose TXT records it carries, in
// whatever section (zeroconf answers PTR in the answers and TXT in the
// additionals; its announcements put everything in the answers).
func parseLibp2p(b []byte, allowLoopback bool) (libp2pPacket, error) {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil {
		return libp2pPacket{}, err
	}
	pkt := libp2pPacket{id: h.ID}
	if !h.Response {
		return pkt, parseQuestions(&p, &pkt)
	}
	if err := p.SkipAllQuestions(); err != nil {
		return pkt, err
	}
	heads := [3]func() (dnsmessage.ResourceHeader, error){p.AnswerHeader, p.AuthorityHeader, p.AdditionalHeader}
	skips := [3]func() error{p.SkipAnswer, p.SkipAuthority, p.SkipAdditional}
	n := 0
	for sec := range heads {
		for {
			rh, err := heads[sec]()
			if errors.Is(err, dnsmessage.ErrSectionDone) {
				break
			}
			if err != nil {
				return pkt, err
			}
			if n++; n > maxLibp2pRecords {
				return pkt, fmt.Errorf("more than %d records", maxLibp2pRecords)
			}
			if err := readRecord(&p, rh, skips[sec], &pkt, allowLoopback); err != nil {
				return pkt, err
			}
		}
	}
	if len(pkt.peers) == 0 {
		return pkt, errNotLibp2p
	}
	return pkt, nil
}

// parseQuestions sets query when the packet asks for the libp2p service.
func parseQuestions(p *dnsmessage.Parser, pkt *libp2pPacket) error {
	for range 16 {
		q, err := p.Question()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return err
		}
		class := q.Class &^ (1 << 15) // the QU bit (RFC 6762 §5.4)
		if (q.Type == dnsmessage.TypePTR || q.Type == dnsmessage.TypeALL) &&
			(class == dnsmessage.ClassINET || class == dnsmessage.ClassANY) &&
			strings.EqualFold(q.Name.String(), libp2pService) {
			pkt.query, pkt.unicast, pkt.question = true, q.Class&(1<<15) != 0, q
			return nil
		}
	}
	if !pkt.query {
		return errNotLibp2p
	}
	return nil
}

// readRecord reads the record whose header was just parsed: the TXT of a
// libp2p instance becomes a peer, anything else is skipped.
func readRecord(p *dnsmessage.Parser, rh dnsmessage.ResourceHeader, skip func() error, pkt *libp2pPacket, allowLoopback bool) error {
	if rh.Type != dnsmessage.TypeTXT || !isLibp2pInstance(rh.Name.String()) {
		return skip()
	}
	r, err := p.TXTResource()
	if err != nil {
		return err
	}
	if len(pkt.peers) == maxLibp2pInstances {
		return nil
	}
	if lp, ok := peerOfTXT(r.TXT, allowLoopback); ok {
		pkt.peers = append(pkt.peers, lp)
	}
	return nil
}

// isLibp2pInstance reports whether name is "<label>._p2p._udp.local.".
func isLibp2pInstance(name string) bool {
	if len(name) <= len(libp2pService)+1 || !strings.EqualFold(name[len(name)-len(libp2pService):], libp2pService) {
		return false
	}
	label := name[:len(name)-len(libp2pService)-1]
	return name[len(label)] == '.' && label != "" && !strings.Contains(label, ".")
}

// peerOfTXT returns the peer the dnsaddr strings of one instance name:
// the first valid /p2p ID wins, and only its addresses count (libp2p lets
// an instance list several peers; nobody does).
func peerOfTXT(txt []string, allowLoopback bool) (libp2pPeer, bool) {
	var lp libp2pPeer
	for i, s := range txt {
		if i == maxLibp2pTXT {
			break
		}
		if !strings.HasPrefix(s, dnsaddrPrefix) {
			continue
		}
		id, a, ok := parseDNSAddr(s[len(dnsaddrPrefix):], lp.id, allowLoopback)
		if !ok || len(lp.addrs) == maxAddrsPerPeer || containsAddr(lp.addrs, a) {
			continue
		}
		lp.id = id
		lp.addrs = append(lp.addrs, a)
	}
	return lp, lp.id != ""
}

// parseDNSAddr accepts /ip4|ip6/A/tcp/P/p2p/ID (of peer want, if not
// empty) and returns the ID and the address without /p2p.
func parseDNSAddr(s string, want peer.ID, allowLoopback bool) (peer.ID, ma.Multiaddr, bool) {
	if len(s) > maxTXTString {
		return "", nil, false
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil || len(m) != 3 || m[2].Code() != ma.P_P2P {
		return "", nil, false
	}
	id := peer.ID(m[2].RawValue())
	if id.Validate() != nil || want != "" && id != want {
		return "", nil, false
	}
	ip, port, ok := splitTCP(m, id)
	if !ok || checkIP(ip, allowLoopback) != nil {
		return "", nil, false
	}
	return id, tcpAddr(ip, port), true
}
