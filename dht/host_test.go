package dht_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/provide"
)

// newHostDHT starts a real host on loopback TCP and a DHT on it, wired as
// the node does.
func newHostDHT(t *testing.T, network string, listen bool) (*p2p.Host, *dht.DHT) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	cfg := p2p.Config{Key: key, Network: network}
	if listen {
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	}
	h, err := p2p.NewHost(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	st, _ := provide.NewStore(provide.StoreConfig{})
	proto := dht.Protocol(h.Network())
	d, err := dht.New(dht.Config{
		Self:         h.AddrInfo,
		Transport:    dht.NewHostNetwork(h.Streams(), proto),
		Store:        st,
		QueryTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Attach(h.Streams(), proto)
	t.Cleanup(func() { d.Close() })
	return h, d
}

func TestRealHosts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var hosts []*p2p.Host
	var dhts []*dht.DHT
	for i := range 4 {
		h, d := newHostDHT(t, "share", i < 3) // the last one only dials
		hosts, dhts = append(hosts, h), append(dhts, d)
	}
	if dhts[3].Mode() != dht.ModeClient || dhts[0].Mode() != dht.ModeServer {
		t.Fatalf("modes %v and %v, want client and server", dhts[3].Mode(), dhts[0].Mode())
	}
	boot := hosts[0].AddrInfo()
	for _, d := range dhts[1:] {
		if err := d.Bootstrap(ctx, []peer.AddrInfo{boot}); err != nil {
			t.Fatal(err)
		}
	}
	key := randomKey()
	if err := dhts[1].Provide(ctx, [][]byte{key}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 3} {
		got := collect(ctx, dhts[i], key)
		if len(got) != 1 || got[0] != hosts[1].ID() {
			t.Errorf("node %d found providers %v, want %s", i, got, hosts[1].ID())
		}
	}
	ai, err := dhts[3].FindPeer(ctx, hosts[2].ID())
	if err != nil || len(ai.Addrs) == 0 {
		t.Errorf("find peer: %v %v", ai, err)
	}
	// The client is in no server's table, though it talked to all.
	for i, d := range dhts[:3] {
		if _, err := d.FindPeerLocal(hosts[3].ID()); err == nil {
			t.Errorf("server %d has the client in its table", i)
		}
	}

	// A host of another network cannot use these DHT servers.
	_, lab := newHostDHT(t, "lab", true)
	if err := lab.Bootstrap(ctx, []peer.AddrInfo{boot}); err == nil {
		t.Error("a lab DHT bootstrapped from a share node")
	}
}

// TestReusedStreamAsKubo sends what kubo does on one stream: an
// ADD_PROVIDER (which kad-dht answers with nothing) then a GET_PROVIDERS.
// The first answer read must be the GET_PROVIDERS one: an acknowledgement
// of the ADD_PROVIDER would be taken for it (kubo 0.43 crashed reading a
// PUT_VALUE answer one message behind).
func TestReusedStreamAsKubo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, _ := newHostDHT(t, "share", true)
	cli, _ := newHostDHT(t, "share", false)
	if err := cli.Connect(ctx, srv.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	s, err := cli.Streams().NewStream(ctx, srv.ID(), dht.Protocol("share"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(5 * time.Second))
	key := randomKey()
	self := dht.PeerOf(cli.AddrInfo())
	self.Addrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}
	for _, m := range []*dht.Message{{Type: dht.AddProvider, Key: key, ProviderPeers: []dht.Peer{self}}, {Type: dht.GetProviders, Key: key}} {
		if err := p2p.WriteDelimited(s, m.Marshal()); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(s)
	b, err := p2p.ReadDelimited(br, br, dht.MaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := dht.UnmarshalMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Type != dht.GetProviders || len(resp.ProviderPeers) != 1 || resp.ProviderPeers[0].ID != cli.ID() {
		t.Fatalf("first answer on the stream: %s with providers %v, want GET_PROVIDERS naming the client", resp.Type, resp.ProviderPeers)
	}
}

// TestRealHostsBatch: over real streams, a Provide of 2000 keys reaches
// each of the two other servers in streams of up to 512 ADD_PROVIDERs,
// each delivered (the stream ends cleanly; answers, from older share
// servers, are read while writing, so neither side stalls on a full window), and the third node finds the records.
func TestRealHostsBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var hosts []*p2p.Host
	var dhts []*dht.DHT
	for range 3 {
		h, d := newHostDHT(t, "share", true)
		hosts, dhts = append(hosts, h), append(dhts, d)
	}
	for _, d := range dhts[1:] {
		if err := d.Bootstrap(ctx, []peer.AddrInfo{hosts[0].AddrInfo()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dhts[0].Bootstrap(ctx, nil); err != nil {
		t.Fatal(err)
	}
	keys := make([][]byte, 2000)
	for i := range keys {
		keys[i] = randomKey()
	}
	st, err := dhts[1].ProvideStats(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 2*len(keys) || st.Streams != 2*4 || st.Failed != 0 {
		t.Fatalf("figures %+v: want %d ADD_PROVIDERs on 8 streams, none failed", st, 2*len(keys))
	}
	for _, k := range [][]byte{keys[0], keys[999], keys[1999]} {
		if got := collect(ctx, dhts[2], k); len(got) != 1 || got[0] != hosts[1].ID() {
			t.Fatalf("found providers %v, want %s", got, hosts[1].ID())
		}
	}
}
