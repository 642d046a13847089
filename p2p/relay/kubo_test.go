package relay

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/internal/kubotest"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// ipfsNode is a host on network ipfs (kubo's protocol names) on loopback
// TCP.
func ipfsNode(t *testing.T) node {
	t.Helper()
	key := testKey(t)
	h, err := p2p.NewHost(context.Background(), p2p.Config{
		Key: key, Network: "ipfs", Logger: testLogger(),
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return node{h, key}
}

// TestKuboRelay runs circuit relay v2 against kubo 0.43 both ways: share
// reserves on kubo's relay service (and checks its signed voucher) and
// another share node reaches it through kubo; kubo reaches a share node
// through a share relay.
func TestKuboRelay(t *testing.T) {
	k := kubotest.StartWith(t, map[string]string{
		"Swarm.RelayService.Enabled": "true",
		// go-libp2p runs the relay service only on a public node; on
		// loopback, AutoNAT would never say so.
		"Internal.Libp2pForceReachability": `"public"`,
	})
	kai, err := peer.AddrInfoFromString(k.Addr)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("share through kubo", func(t *testing.T) {
		a, b := ipfsNode(t), ipfsNode(t)
		ca := NewClient(a.Host, testLogger())
		NewClient(b.Host, testLogger())
		setEcho(a.Host)
		if err := a.Connect(testCtx(t), kai); err != nil {
			t.Fatal(err)
		}
		held, err := ca.Reserve(testCtx(t), kai.ID)
		if err != nil {
			t.Fatalf("reserve on kubo: %v", err)
		}
		if held.Voucher == nil || held.Voucher.Relay != kai.ID || held.Voucher.Peer != a.ID() {
			t.Fatalf("kubo's voucher %+v: want one signed by kubo for us", held.Voucher)
		}
		if d := time.Until(held.Expire); d < 50*time.Minute {
			t.Fatalf("kubo's reservation expires in %s, want about 1 h", d)
		}
		via := append(append(ma.Multiaddr(nil), kai.Addrs[0]...), *kai.ID.P2pComponent(), circuitComponent)
		if err := b.Connect(testCtx(t), peer.AddrInfo{ID: a.ID(), Addrs: []ma.Multiaddr{via}}); err != nil {
			t.Fatalf("connect through kubo's relay: %v", err)
		}
		if c := b.Conn(a.ID()); !c.Relayed() {
			t.Fatalf("connection at %s, want relayed", c.RemoteMultiaddr())
		}
		// Kubo's circuits are limited: data streams refuse them, a
		// stream that opts in gets through within the limit of 128 KiB
		// per direction.
		if !b.Conn(a.ID()).Limited() {
			t.Fatal("a circuit through kubo's relay is not limited")
		}
		if err := echo(testCtx(t), b.Host, a.ID(), 16<<10); !errors.Is(err, p2p.ErrLimitedConn) {
			t.Fatalf("echo through kubo's limited relay: %v, want ErrLimitedConn", err)
		}
		if err := echo(p2p.WithLimitedConn(testCtx(t)), b.Host, a.ID(), 16<<10); err != nil {
			t.Fatalf("echo through kubo: %v", err)
		}
	})

	t.Run("kubo through share", func(t *testing.T) {
		r, a := ipfsNode(t), ipfsNode(t)
		newService(t, r, DefaultLimits())
		reserved(t, r, a)
		target := relayCircuit(r.Addrs()[0], r.ID()).String() + "/p2p/" + a.ID().String()
		if out, err := k.Try(nil, "swarm", "connect", target); err != nil {
			t.Fatalf("kubo swarm connect %s: %v (%s)", target, err, out)
		}
		kid, _ := peer.Decode(k.ID)
		waitFor(t, 10*time.Second, "kubo's relayed connection and identify", func() bool {
			c := a.Conn(kid)
			return c != nil && c.Relayed() && strings.HasPrefix(a.Peerstore().AgentVersion(kid), "kubo/")
		})
	})
}

// TestKuboReservesOnShare: a private kubo with a share relay as its static
// relay reserves there, and a share node then reaches kubo through it
// (kubo's stop side). kubo does not advertise the circuit address: it
// drops relay addresses that are not public, and ours are loopback.
func TestKuboReservesOnShare(t *testing.T) {
	kubotest.Binary(t)
	r, b := ipfsNode(t), ipfsNode(t)
	svc := newService(t, r, DefaultLimits())
	NewClient(b.Host, testLogger())
	static := `["` + r.Addrs()[0].String() + "/p2p/" + r.ID().String() + `"]`
	k := kubotest.StartWith(t, map[string]string{
		"Swarm.RelayClient.Enabled":        "true",
		"Swarm.RelayClient.StaticRelays":   static,
		"Internal.Libp2pForceReachability": `"private"`,
	})
	kid, err := peer.Decode(k.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "kubo to reserve on the share relay", func() bool { return svc.Stats().Reservations == 1 })
	if err := b.Connect(testCtx(t), peer.AddrInfo{ID: kid, Addrs: []ma.Multiaddr{relayCircuit(r.Addrs()[0], r.ID())}}); err != nil {
		t.Fatalf("connect to kubo through the share relay: %v", err)
	}
	waitFor(t, 10*time.Second, "identify with kubo over the circuit", func() bool {
		c := b.Conn(kid)
		return c != nil && c.Relayed() && strings.HasPrefix(b.Peerstore().AgentVersion(kid), "kubo/")
	})
}
