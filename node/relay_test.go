package node

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/share-p2p/share/p2p/relay"
)

// TestFetchThroughRelay: a provider reachable only through a relay that
// carries bulk data (Relay.CircuitBytes 0) serves a getter that knows
// nothing but its /p2p-circuit address.
func TestFetchThroughRelay(t *testing.T) {
	mn := newMemNet(t)
	r := mn.nodeConfig(NetworkOptions{}, map[string]string{
		"Relay.Service": "on", "Relay.CircuitBytes": "0", "Relay.CircuitDuration": "0",
	})
	ra := r.net.Host.AddrInfo()
	static := `["` + ra.P2pAddrs()[0].String() + `"]`
	provider := mn.nodeConfig(NetworkOptions{}, map[string]string{"Relay.Client": "on", "Relay.StaticRelays": static})
	getter := mn.node()
	waitFor(t, 10*time.Second, func() bool { return len(provider.net.RelayClient().Reservations()) == 1 },
		func() string { return "the provider holds no reservation on the static relay" })
	if r.net.RelayService() == nil {
		t.Fatal("Relay.Service on, but no service")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid := provider.net.Host.ID()
	// share id lists the circuit address; share connect dials it; share
	// peers shows it.
	pd := &Daemon{Node: provider, Host: provider.net.Host}
	id, _ := pd.ID(ctx)
	target := ""
	for _, a := range id.Addresses {
		if strings.Contains(a, "/p2p-circuit/p2p/") {
			target = a
		}
	}
	if target == "" {
		t.Fatalf("share id addresses %v: none through the relay", id.Addresses)
	}
	gd := &Daemon{Node: getter, Host: getter.net.Host}
	if _, err := gd.Connect(ctx, target); err != nil {
		t.Fatal(err)
	}
	if c := getter.net.Host.Conn(pid); !c.Relayed() {
		t.Fatalf("connection to the provider at %s, want relayed", c.RemoteMultiaddr())
	}
	shown := false
	for _, p := range gd.Peers(ctx) {
		shown = shown || p.ID == pid.String() && strings.HasSuffix(p.Addr, "/p2p/"+r.net.Host.ID().String()+"/p2p-circuit")
	}
	if !shown {
		t.Fatalf("share peers: %+v, want the provider at a /p2p-circuit address", gd.Peers(ctx))
	}
	c, data := addRandom(t, provider, 4<<20, 7)
	var out bytes.Buffer
	if _, err := getter.Cat(ctx, c, &out, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("cat through the relay: different bytes")
	}
	if st := r.net.RelayService().Stats(); st.BytesRelayed < 4<<20 {
		t.Fatalf("relay stats %+v: the data did not go through it", st)
	}
}

// TestRelayServiceAuto: "auto" runs the service only while the node says
// it is publicly reachable; unknown reachability means off.
func TestRelayServiceAuto(t *testing.T) {
	mn := newMemNet(t)
	if n := mn.node(); n.net.RelayService() != nil {
		t.Fatal("Relay.Service auto with unknown reachability runs the service")
	}
	pub := mn.nodeWith(NetworkOptions{Public: func() bool { return true }})
	waitFor(t, 5*time.Second, func() bool { return pub.net.RelayService() != nil },
		func() string { return "a public node with Relay.Service auto runs no service" })
	if !slices.Contains(pub.net.Host.Protocols(), relay.HopProtocol) {
		t.Fatal("the service does not serve the hop protocol")
	}
}
