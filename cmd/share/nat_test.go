package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// newNATLab brings up testdata/lab/nat (an internet of public hosts p1..
// and sites s1, s2... behind NAT routers) under a prefix of its own and
// tears it down at the end. It needs root, iproute2 and nftables; with
// SHARE_REQUIRE_LAB=1 (CI) a missing lab fails instead of skipping.
func newNATLab(t *testing.T, args ...string) *lab {
	t.Helper()
	return newNATLabOn(t, "", args...)
}

// newNATLabOn is newNATLab with the internet on the /24 whose first three
// bytes are net (the script's NAT_NET; "" for its default, 198.51.100).
func newNATLabOn(t *testing.T, net string, args ...string) *lab {
	t.Helper()
	script, _ := filepath.Abs("../../testdata/lab/nat")
	if os.Geteuid() != 0 {
		if os.Getenv("SHARE_REQUIRE_LAB") != "" {
			t.Fatal("the NAT lab needs root")
		}
		t.Skip("the NAT lab needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the NAT lab needs %s: install iproute2 and nftables", tool)
		}
	}
	// A short prefix: the script's veth names must fit in 15 bytes.
	l := &lab{script: script, env: append(os.Environ(), fmt.Sprintf("NAT_PREFIX=n%d", os.Getpid()%1000))}
	if net != "" {
		l.env = append(l.env, "NAT_NET="+net)
	}
	// Cleanup first: an "up" that fails halfway leaves namespaces too.
	t.Cleanup(func() {
		down := exec.Command(l.script, "down")
		down.Env = l.env
		down.Run()
	})
	l.run(t, append([]string{"up"}, args...)...)
	return l
}

// idInfo is what share id --json says.
type idInfo struct {
	ID                string
	Reachability      string
	PublicAddresses   []string
	ObservedAddresses []string
}

func (l *lab) id(t *testing.T, host, rp string) idInfo {
	t.Helper()
	out, err := l.share(host, rp, "id", "--json").Output()
	var info idInfo
	if err != nil || json.Unmarshal(out, &info) != nil {
		t.Fatalf("id on %s: %v\n%s", host, err, out)
	}
	return info
}

// waitReachability waits until host's daemon concludes something.
func (l *lab) waitReachability(t *testing.T, host, rp string) idInfo {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		info := l.id(t, host, rp)
		if info.Reachability != "unknown" {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: reachability still unknown after 60 s: %+v", host, info)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestNATReachability: a daemon on public host p1 and one on each of two
// sites behind NAT (site 2's a symmetric one), the NATed ones knowing only
// p1: AutoNAT says p1 is public at its address, and the others private,
// with no public address. Each NATed node has one server (p1) and p1 two,
// so one confirmation is asked for.
func TestNATReachability(t *testing.T) {
	l := newNATLab(t, "1", "2", "--symmetric-site", "2")
	work := t.TempDir()
	hosts := []string{"p1", "s1h1", "s2h1"}
	repos := map[string]string{}
	for _, h := range hosts {
		repos[h] = filepath.Join(work, h)
		configure(t, repos[h], "Discovery.MDNS", "false", "Addresses.Gateway", "",
			"Addresses.Listen", `["/ip4/0.0.0.0/tcp/4001"]`, "AutoNAT.Confirmations", "1")
	}
	p1 := l.id(t, "p1", repos["p1"])
	boot := fmt.Sprintf(`["/ip4/198.51.100.1/tcp/4001/p2p/%s"]`, p1.ID)
	l.startDaemon(t, "p1", repos["p1"])
	for _, h := range hosts[1:] {
		configure(t, repos[h], "Bootstrap", boot)
		l.startDaemon(t, h, repos[h])
	}
	start := time.Now()
	for _, h := range hosts {
		info := l.waitReachability(t, h, repos[h])
		t.Logf("%s after %v: %+v", h, time.Since(start).Round(time.Millisecond), info)
		switch {
		case h == "p1" && (info.Reachability != "public" || !slices.Equal(info.PublicAddresses, []string{"/ip4/198.51.100.1/tcp/4001"})):
			t.Errorf("p1: %+v, want public at /ip4/198.51.100.1/tcp/4001", info)
		case h != "p1" && (info.Reachability != "private" || len(info.PublicAddresses) != 0):
			t.Errorf("%s: %+v, want private with no public address", h, info)
		}
	}
}
