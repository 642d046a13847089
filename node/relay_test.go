package node

import (
	"bytes"
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/relay"
)

// relayedProvider starts a relay with relayKV (Relay.Service on), a
// provider holding a reservation on it and a getter that connects to the
// provider through it, knowing nothing but its /p2p-circuit address (as
// share id lists it, share connect dials it and share peers shows it).
func relayedProvider(t *testing.T, relayKV map[string]string) (r, provider, getter *Node) {
	t.Helper()
	mn := newMemNet(t)
	kv := map[string]string{"Relay.Service": "on"}
	maps.Copy(kv, relayKV)
	r = mn.nodeConfig(NetworkOptions{}, kv)
	ra := r.net.Host.AddrInfo()
	static := `["` + ra.P2pAddrs()[0].String() + `"]`
	provider = mn.nodeConfig(NetworkOptions{}, map[string]string{"Relay.Client": "on", "Relay.StaticRelays": static})
	getter = mn.node()
	waitFor(t, 10*time.Second, func() bool { return len(provider.net.RelayClient().Reservations()) == 1 },
		func() string { return "the provider holds no reservation on the static relay" })
	if r.net.RelayService() == nil {
		t.Fatal("Relay.Service on, but no service")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid := provider.net.Host.ID()
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
	return r, provider, getter
}

// TestFetchThroughRelay: a provider reachable only through a relay that
// carries bulk data (Relay.CircuitBytes 0) serves a getter that knows
// nothing but its /p2p-circuit address.
func TestFetchThroughRelay(t *testing.T) {
	r, provider, getter := relayedProvider(t, map[string]string{"Relay.CircuitBytes": "0", "Relay.CircuitDuration": "0"})
	if getter.net.Host.Conn(provider.net.Host.ID()).Limited() {
		t.Fatal("a circuit of a relay without limits is limited")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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

// TestFetchThroughLimitedRelay: through a relay with the default limits
// (libp2p's: 2 min, 128 KiB a circuit), with no direct path (the in-memory
// network has no public address to punch a hole to), a get of the
// provider's file fails at once, not at the idle timeout, saying why, of
// kind unreachable; nothing but the coordination crossed the relay.
func TestFetchThroughLimitedRelay(t *testing.T) {
	r, provider, getter := relayedProvider(t, nil)
	pid := provider.net.Host.ID()
	if !getter.net.Host.Conn(pid).Limited() {
		t.Fatal("a circuit of a relay with the default limits is not limited")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _ := addRandom(t, provider, 4<<20, 8)
	start := time.Now()
	_, err := getter.Cat(ctx, c, io.Discard, FetchOptions{})
	took := time.Since(start)
	want := "peer " + pid.ShortString() + " is only reachable through a relay that limits data"
	if err == nil || !errs.Is(errs.Unreachable, err) || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), c.String()+": ") {
		t.Fatalf("cat through a limited relay: %v (kind %v), want %q of kind unreachable", err, errs.KindOf(err), want)
	}
	// The fetcher's grace for LAN peers (3 s after the join) is the only
	// wait: well below the idle timeout.
	if took > 10*time.Second {
		t.Fatalf("the get failed after %v, want at once", took)
	}
	if st := r.net.RelayService().Stats(); st.BytesRelayed >= 128<<10 {
		t.Fatalf("relay stats %+v: data went through the limited relay", st)
	}
	t.Logf("%v after %v", err, took.Round(time.Millisecond))
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
