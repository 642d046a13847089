package observed

import (
	"fmt"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/peer"
)

var listen = []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/tcp/4001")}

// obs is an observation by the peer at remote of an outbound connection
// we dialled from an ephemeral port.
func obs(observed, remote string, p int) Observation {
	return Observation{
		Observed: ma.StringCast(observed),
		Local:    ma.StringCast("/ip4/10.0.0.5/tcp/53211"),
		Remote:   ma.StringCast(remote),
		Peer:     peer.ID(fmt.Sprint("peer", p)),
	}
}

func TestConfirmedNeedsDistinctGroups(t *testing.T) {
	m := New(Config{Threshold: 3})
	want := "/ip4/203.0.113.7/tcp/4001"
	// Many peers of one /24 count once.
	for i := 0; i < 10; i++ {
		m.Record(obs("/ip4/203.0.113.7/tcp/53211", fmt.Sprintf("/ip4/198.51.100.%d/tcp/4001", i+1), i), listen)
	}
	if c := m.Confirmed(); len(c) != 0 {
		t.Fatalf("one /24 confirmed %v", c)
	}
	m.Record(obs("/ip4/203.0.113.7/tcp/1", "/ip4/192.0.2.1/tcp/4001", 20), listen)
	m.Record(obs("/ip4/203.0.113.7/tcp/2", "/ip4/8.8.4.1/tcp/4001", 21), listen)
	c := m.Confirmed()
	if len(c) != 1 || c[0].String() != want {
		t.Fatalf("confirmed %v, want %s (the listen port on the observed IP)", c, want)
	}
}

func TestOneLiarChangesNothing(t *testing.T) {
	m := New(Config{Threshold: 2})
	for i, r := range []string{"/ip4/192.0.2.1/tcp/1", "/ip4/8.8.4.1/tcp/1"} {
		m.Record(obs("/ip4/203.0.113.7/tcp/5", r, i), listen)
	}
	// The liar reports another address, again and again, under many IDs.
	for i := 0; i < 50; i++ {
		m.Record(obs("/ip4/1.2.3.4/tcp/5", "/ip4/9.9.9.9/tcp/1", 100+i), listen)
	}
	c := m.Confirmed()
	if len(c) != 1 || c[0].String() != "/ip4/203.0.113.7/tcp/4001" {
		t.Fatalf("confirmed %v", c)
	}
}

func TestForgedObservationsDropped(t *testing.T) {
	m := New(Config{})
	for _, tc := range []struct {
		name string
		o    Observation
	}{
		{"private from public", obs("/ip4/10.1.2.3/tcp/5", "/ip4/8.8.8.8/tcp/1", 1)},
		{"loopback from public", obs("/ip4/127.0.0.1/tcp/5", "/ip4/8.8.8.8/tcp/1", 1)},
		{"other family", obs("/ip6/2001:db8::1/tcp/5", "/ip4/8.8.8.8/tcp/1", 1)},
		{"not tcp", obs("/ip4/8.8.8.8/udp/5", "/ip4/8.8.8.8/tcp/1", 1)},
		{"unspecified", obs("/ip4/0.0.0.0/tcp/5", "/ip4/8.8.8.8/tcp/1", 1)},
		{"multicast", obs("/ip4/224.0.0.251/tcp/5", "/ip4/8.8.8.8/tcp/1", 1)},
	} {
		if m.Record(tc.o, listen) {
			t.Errorf("%s: kept", tc.name)
		}
	}
	if len(m.Raw()) != 0 {
		t.Fatalf("recorded %v", m.Raw())
	}
	// A dial-only host has no port anybody could dial.
	if m.Record(obs("/ip4/203.0.113.7/tcp/5", "/ip4/8.8.8.8/tcp/1", 1), nil) {
		t.Error("kept an outbound observation of a host that does not listen")
	}
}

func TestInboundKeepsObservedPort(t *testing.T) {
	m := New(Config{Threshold: 1})
	o := obs("/ip4/203.0.113.7/tcp/6000", "/ip4/8.8.8.8/tcp/1", 1)
	o.Inbound, o.Local = true, ma.StringCast("/ip4/10.0.0.5/tcp/4001")
	m.Record(o, listen)
	if c := m.Confirmed(); len(c) != 1 || c[0].String() != "/ip4/203.0.113.7/tcp/6000" {
		t.Fatalf("confirmed %v: a port forward's outer port is the one to dial", c)
	}
	if a, ok := m.By("peer1"); !ok || a.String() != "/ip4/203.0.113.7/tcp/6000" {
		t.Fatalf("By = %v %v", a, ok)
	}
}

func TestObservationsExpire(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New(Config{Threshold: 1, TTL: time.Minute, Now: func() time.Time { return now }})
	m.Record(obs("/ip4/203.0.113.7/tcp/5", "/ip4/8.8.8.8/tcp/1", 1), listen)
	if len(m.Confirmed()) != 1 {
		t.Fatal("not confirmed")
	}
	now = now.Add(2 * time.Minute)
	if c := m.Confirmed(); len(c) != 0 {
		t.Fatalf("expired observation still confirms %v", c)
	}
	if _, ok := m.By("peer1"); ok {
		t.Fatal("By returned an expired observation")
	}
}

func TestBounded(t *testing.T) {
	m := New(Config{})
	for i := 0; i < 3*maxGroups; i++ {
		r := fmt.Sprintf("/ip4/%d.%d.%d.1/tcp/1", 1+i>>16&0xff, i>>8&0xff, i&0xff)
		m.Record(obs(fmt.Sprintf("/ip4/203.0.%d.%d/tcp/5", i>>8&0xff, i&0xff), r, i), listen)
	}
	if n := len(m.Raw()); n > maxGroups {
		t.Fatalf("%d observations kept", n)
	}
}

func TestIsPublic(t *testing.T) {
	for a, want := range map[string]bool{
		"/ip4/8.8.8.8/tcp/1": true, "/ip4/198.51.100.1/tcp/1": true, "/ip4/10.1.1.1/tcp/1": false,
		"/ip4/192.168.1.1/tcp/1": false, "/ip4/100.64.1.1/tcp/1": false, "/ip4/127.0.0.1/tcp/1": false,
		"/ip6/2606:4700::1/tcp/1": true, "/ip6/fd00::1/tcp/1": false, "/ip6/fe80::1/tcp/1": false,
		"/ip4/8.8.8.8/udp/1": false,
	} {
		if got := IsPublic(ma.StringCast(a)); got != want {
			t.Errorf("IsPublic(%s) = %v", a, got)
		}
	}
}
