//go:build linux

package mdns

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/internal/kubotest"
	"github.com/share-p2p/share/p2p/peer"
)

// kubo is an initialised kubo repository.
type kubo struct {
	bin, path string
	id        peer.ID
}

// newKubo initialises a kubo repository that listens on swarm, finds
// peers by mDNS when mdns is set and knows no bootstrap peer.
func newKubo(t *testing.T, swarm string, mdns bool) *kubo {
	t.Helper()
	k := &kubo{bin: kubotest.Binary(t), path: filepath.Join(t.TempDir(), "ipfs")}
	k.run(t, "init", "--profile", "test")
	k.run(t, "config", "--json", "Addresses.Swarm", `["`+swarm+`"]`)
	k.run(t, "config", "--json", "Bootstrap", "[]")
	if mdns {
		k.run(t, "config", "--json", "Discovery.MDNS.Enabled", "true")
	}
	id, err := peer.Decode(strings.TrimSpace(k.run(t, "config", "Identity.PeerID")))
	if err != nil {
		t.Fatal(err)
	}
	k.id = id
	return k
}

func (k *kubo) cmd(args ...string) *exec.Cmd {
	c := exec.Command(k.bin, args...)
	c.Env = append(os.Environ(), "IPFS_PATH="+k.path)
	return c
}

func (k *kubo) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := k.cmd(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipfs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestKuboFindsUsAndWeFindKubo runs kubo with mDNS on beside a Service
// of FormatLibp2p in a namespace of their own (loopback only): the
// Service reports kubo at its swarm address, and kubo dials the address
// the Service announces, with no configuration on either side.
func TestKuboFindsUsAndWeFindKubo(t *testing.T) {
	ns := newNetns(t)
	k := newKubo(t, "/ip4/127.0.0.1/tcp/44001", true)
	found := make(chan []ma.Multiaddr, 16)
	dialed := make(chan struct{}, 1)
	var svc *Service
	var d *exec.Cmd
	start := time.Now()
	ns.do(func() {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go acceptOne(ln, dialed)
		self := newID(t)
		svc, err = New(Config{
			Network: "ipfs", Format: FormatLibp2p, ID: self, IncludeLoopback: true,
			Addrs: func() []ma.Multiaddr { return []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/" + portOf(ln))} },
			OnPeer: func(id peer.ID, addrs []ma.Multiaddr) {
				if id == k.id {
					found <- addrs
				}
			},
			QueryInterval: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		d = k.cmd("daemon", "--offline=false")
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { d.Process.Kill(); d.Wait(); svc.Close() })
	timeout := time.After(60 * time.Second)
	for got, heard := false, false; !got || !heard; {
		select {
		case addrs := <-found:
			if len(addrs) != 1 || addrs[0].String() != "/ip4/127.0.0.1/tcp/44001" {
				t.Fatalf("kubo found at %v", addrs)
			}
			if !got {
				t.Logf("found kubo %v after its start", time.Since(start))
			}
			got = true
		case <-dialed:
			t.Logf("kubo dialed us %v after its start", time.Since(start))
			heard = true
		case <-timeout:
			t.Fatalf("after 60 s: found kubo %v, kubo dialed us %v", got, heard)
		}
	}
}

// acceptOne signals the first connection ln accepts.
func acceptOne(ln net.Listener, dialed chan<- struct{}) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	c.Close()
	dialed <- struct{}{}
}

func portOf(ln net.Listener) string {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
