package pubsub

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// TestMeetConnectedHosts: two real hosts connected before pubsub starts
// on either (identify listed no pubsub protocol, and is not pushed
// again) meet: the first one's attempt is refused, the second one's
// reaches it, and a subscription crosses without a new connection.
func TestMeetConnectedHosts(t *testing.T) {
	var hosts [2]*p2p.Host
	var keys [2]ed25519.PrivateKey
	for i := range hosts {
		_, keys[i], _ = ed25519.GenerateKey(rand.Reader)
		h, err := p2p.NewHost(context.Background(), p2p.Config{Key: keys[i], Network: "share",
			ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hosts[i] = h
	}
	subs := [2]*p2p.Subscription{hosts[0].Subscribe(), hosts[1].Subscribe()}
	if err := hosts[0].Connect(context.Background(), peer.AddrInfo{ID: hosts[1].ID(), Addrs: hosts[1].Addrs()}); err != nil {
		t.Fatal(err)
	}
	for i, sub := range subs {
		waitIdentified(t, sub, hosts[1-i].ID())
		sub.Close()
	}
	var pss [2]*PubSub
	for i, h := range hosts {
		ps, err := New(h.Streams(), Config{Key: keys[i]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ps.Close() })
		pss[i] = ps
	}
	tp, _ := pss[1].Join("t")
	if _, err := tp.Subscribe(); err != nil {
		t.Fatal(err)
	}
	realWait(t, 10*time.Second, "host 0 to learn of host 1's subscription", func() bool {
		return len(pss[0].ListPeers("t")) == 1
	})
	if n := len(hosts[0].ConnsToPeer(hosts[1].ID())); n != 1 {
		t.Errorf("%d connections between the hosts, want the first one only", n)
	}
}

// waitIdentified waits for sub's Identified event of p.
func waitIdentified(t *testing.T, sub *p2p.Subscription, p peer.ID) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-sub.Events():
			if e.Kind == p2p.Identified && e.Peer == p {
				return
			}
		case <-timeout:
			t.Fatal("identify did not complete within 10 s")
		}
	}
}

// TestUnsubscribedStreamNegotiated: a node subscribed to nothing has no
// first RPC to send, yet the peer must take its stream at once: it resets
// a stream whose protocol it has not read within its negotiation timeout,
// and the node's later subscriptions then never reached it (following a
// name started 15 s after connecting heard no announcements).
func TestUnsubscribedStreamNegotiated(t *testing.T) {
	var hosts [2]*p2p.Host
	var pss [2]*PubSub
	for i := range hosts {
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		h, err := p2p.NewHost(context.Background(), p2p.Config{Key: key, Network: "share",
			NegotiationTimeout: 300 * time.Millisecond,
			ListenAddrs:        []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hosts[i] = h
		ps, err := New(h.Streams(), Config{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ps.Close() })
		pss[i] = ps
	}
	if err := hosts[0].Connect(context.Background(), peer.AddrInfo{ID: hosts[1].ID(), Addrs: hosts[1].Addrs()}); err != nil {
		t.Fatal(err)
	}
	for i := range pss {
		realWait(t, 10*time.Second, "each node to take the other's pubsub stream", func() bool {
			return hasInbound(pss[i], hosts[1-i].ID())
		})
	}
	tp, _ := pss[0].Join("t")
	if _, err := tp.Subscribe(); err != nil {
		t.Fatal(err)
	}
	realWait(t, 10*time.Second, "host 1 to learn of host 0's subscription", func() bool {
		return len(pss[1].ListPeers("t")) == 1
	})
}

// hasInbound reports whether ps reads a stream of p.
func hasInbound(ps *PubSub, p peer.ID) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pc := ps.peers[p]
	return pc != nil && pc.in != nil
}
