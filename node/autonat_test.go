package node

import (
	"context"
	"testing"
	"time"

	"github.com/share-p2p/share/p2p/autonat"
)

// TestAutoNATWired: a daemon serves AutoNAT v2 and checks itself; on
// loopback (a private address, never tested) it stays unknown and not
// publicly reachable. ServiceMode disabled serves nothing.
func TestAutoNATWired(t *testing.T) {
	a := onlineNode(t)
	b := startNode(t, NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil, map[string]string{"AutoNAT.ServiceMode": "disabled"})
	connect(t, b, a)
	req, back := autonat.Protocols(a.net.Host.Network())
	hb := b.net.Host
	if !hb.Peerstore().SupportsProtocol(a.net.Host.ID(), req) || !hb.Peerstore().SupportsProtocol(a.net.Host.ID(), back) {
		t.Fatalf("a does not announce %s and %s: %v", req, back, hb.Peerstore().Protocols(a.net.Host.ID()))
	}
	ha := a.net.Host
	waitFor(t, 10*time.Second, func() bool { return ha.Peerstore().SupportsProtocol(hb.ID(), back) },
		func() string { return "a to identify b" })
	if ha.Peerstore().SupportsProtocol(hb.ID(), req) || !ha.Peerstore().SupportsProtocol(hb.ID(), back) {
		t.Fatalf("b (ServiceMode disabled) protocols: %v", ha.Peerstore().Protocols(hb.ID()))
	}
	d := &Daemon{Node: a, Host: a.net.Host}
	info, err := d.ID(context.Background())
	if err != nil || info.Reachability != "unknown" || len(info.PublicAddresses) != 0 || a.net.PubliclyReachable() {
		t.Fatalf("ID = %+v, %v", info, err)
	}
}
