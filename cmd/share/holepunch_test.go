package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// holePunchLab starts a relay on p1 (Relay.Service on, with relayArgs)
// and a daemon on s1h1 and s2h1 that know only p1, hold a reservation on
// it and listen on port 4001; s2h1 then connects to s1h1 through the
// relay. It returns the repositories and s1h1's ID.
func holePunchLab(t *testing.T, l *lab, relayArgs ...string) (map[string]string, string) {
	t.Helper()
	work := t.TempDir()
	repos := map[string]string{}
	for _, h := range []string{"p1", "s1h1", "s2h1"} {
		repos[h] = filepath.Join(work, h)
		configure(t, repos[h], "Discovery.MDNS", "false", "Addresses.Gateway", "",
			"Addresses.Listen", `["/ip4/0.0.0.0/tcp/4001"]`, "AutoNAT.Confirmations", "1")
	}
	configure(t, repos["p1"], append([]string{"Relay.Service", "on"}, relayArgs...)...)
	p1 := l.id(t, "p1", repos["p1"]).ID
	relayAddr := "/ip4/198.51.100.1/tcp/4001/p2p/" + p1
	l.startDaemon(t, "p1", repos["p1"])
	for _, h := range []string{"s1h1", "s2h1"} {
		configure(t, repos[h], "Bootstrap", `["`+relayAddr+`"]`,
			"Relay.Client", "on", "Relay.StaticRelays", `["`+relayAddr+`"]`)
		l.startDaemon(t, h, repos[h])
	}
	s1 := l.id(t, "s1h1", repos["s1h1"]).ID
	waitLab(t, "s1h1's reservation on p1", func() bool {
		out, _ := l.share("s1h1", repos["s1h1"], "id", "--json").Output()
		return bytes.Contains(out, []byte("/p2p-circuit"))
	})
	target := relayAddr + "/p2p-circuit/p2p/" + s1
	if out, err := l.share("s2h1", repos["s2h1"], "connect", target).CombinedOutput(); err != nil {
		t.Fatalf("connect through the relay: %v\n%s", err, out)
	}
	return repos, s1
}

// peerAddr is the address s2h1's daemon shows for peer id ("" if none).
func peerAddr(t *testing.T, l *lab, rp, id string) string {
	t.Helper()
	return peerAddrOn(t, l, "s2h1", rp, id)
}

// peerAddrOn is the address host's daemon shows for peer id ("" if none).
func peerAddrOn(t *testing.T, l *lab, host, rp, id string) string {
	t.Helper()
	out, err := l.share(host, rp, "peers", "--json").Output()
	if err != nil {
		t.Fatalf("peers: %v", err)
	}
	var peers []struct{ ID, Addr string }
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var p struct{ ID, Addr string }
		if json.Unmarshal(line, &p) == nil {
			peers = append(peers, p)
		} else if json.Unmarshal(out, &peers) == nil {
			break
		}
	}
	for _, p := range peers {
		if p.ID == id {
			return p.Addr
		}
	}
	return ""
}

func waitLab(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// labGet adds size random bytes on s1h1 and gets them on s2h1.
func labGet(t *testing.T, l *lab, repos map[string]string, size int) ([]byte, error) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	c := l.add(t, "s1h1", repos["s1h1"], data)
	dst := filepath.Join(t.TempDir(), "out.bin")
	start := time.Now()
	if out, err := l.share("s2h1", repos["s2h1"], "get", c, "-o", dst, "--timeout", "20s").CombinedOutput(); err != nil {
		return out, err
	}
	t.Logf("get of %d MiB: %.1f Mbit/s", size>>20, float64(size)*8/1e6/time.Since(start).Seconds())
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes (%v), want %d identical", len(got), err, size)
	}
	return nil, nil
}

// TestNATHolePunch: nodes on two sites behind endpoint-independent NATs
// that know only the relay on p1 meet through it, punch a hole (DCUtR),
// and the get runs over the direct connection.
func TestNATHolePunch(t *testing.T) {
	// testdata/bench/holepunch.sh measures with these: a bigger get on
	// rate-limited links.
	size, args := 8<<20, []string{"1", "2"}
	if mib, err := strconv.Atoi(os.Getenv("SHARE_HOLEPUNCH_MIB")); err == nil && mib > 0 {
		size = mib << 20
	}
	if r := os.Getenv("SHARE_NAT_RATE"); r != "" {
		args = append(args, "--rate", r)
	}
	l := newNATLab(t, args...)
	repos, s1 := holePunchLab(t, l)
	start := time.Now()
	waitLab(t, "a direct connection from s2h1 to s1h1", func() bool {
		a := peerAddr(t, l, repos["s2h1"], s1)
		return a != "" && !strings.Contains(a, "/p2p-circuit")
	})
	t.Logf("direct at %s after %v (from the connect's return)", peerAddr(t, l, repos["s2h1"], s1), time.Since(start).Round(time.Millisecond))
	if out, err := labGet(t, l, repos, size); err != nil {
		t.Fatalf("get: %v\n%s", err, out)
	}
	if a := peerAddr(t, l, repos["s2h1"], s1); a == "" || strings.Contains(a, "/p2p-circuit") {
		t.Fatalf("after the get, s2h1's connection to s1h1 is at %q, want direct", a)
	}
}

// TestNATRelayFallback: site 2 is a symmetric NAT, so no hole can be
// punched; through a relay that carries bulk data (no circuit limits) the
// get completes over the relay.
func TestNATRelayFallback(t *testing.T) {
	l := newNATLab(t, "1", "2", "--symmetric-site", "2")
	repos, s1 := holePunchLab(t, l, "Relay.CircuitBytes", "0", "Relay.CircuitDuration", "0")
	if out, err := labGet(t, l, repos, 4<<20); err != nil {
		t.Fatalf("get through a bulk relay: %v\n%s", err, out)
	}
	if a := peerAddr(t, l, repos["s2h1"], s1); !strings.Contains(a, "/p2p-circuit") {
		t.Fatalf("s2h1's connection to s1h1 is at %q, want relayed (no hole through a symmetric NAT)", a)
	}
}

// TestNATLimitedRelay: site 2 is a symmetric NAT, so no hole can be
// punched, and the relay keeps the default limits (libp2p's and kubo's:
// 2 min, 128 KiB a circuit): share get fails once the punch has failed,
// well before its idle timeout, with one line naming the cause, and
// --json carries the kind.
func TestNATLimitedRelay(t *testing.T) {
	l := newNATLab(t, "1", "2", "--symmetric-site", "2")
	repos, s1 := holePunchLab(t, l)
	data := make([]byte, 1<<20)
	rand.Read(data)
	c := l.add(t, "s1h1", repos["s1h1"], data)
	want := "share: " + c + ": not found locally, and peer *" + s1[len(s1)-6:] +
		" is only reachable through a relay that limits data\n"
	for _, asJSON := range []bool{false, true} {
		args := []string{"get", c, "-o", filepath.Join(t.TempDir(), "out.bin"), "--timeout", "60s"}
		if asJSON {
			args = append(args, "--json")
		}
		cmd := l.share("s2h1", repos["s2h1"], args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		t.Logf("get (json %v) failed after %v: %s", asJSON, took.Round(time.Millisecond), stderr.Bytes())
		if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 || stdout.Len() != 0 {
			t.Fatalf("get through a limited relay: exit %d (%v), stdout %q, want exit 1 and nothing", code, err, stdout.Bytes())
		}
		if took > 30*time.Second {
			t.Errorf("the get failed after %v, want once the punch failed (about 15 s), not at the idle timeout", took)
		}
		if !asJSON {
			if stderr.String() != want {
				t.Errorf("stderr %q, want %q", stderr.String(), want)
			}
			continue
		}
		var e struct{ Error, Kind, Reason string }
		if err := json.Unmarshal(stderr.Bytes(), &e); err != nil || e.Kind != "unreachable" || "share: "+e.Error+"\n" != want {
			t.Errorf("--json stderr %q (%v), want kind unreachable and the line %q", stderr.Bytes(), err, want)
		}
	}
	if a := peerAddr(t, l, repos["s2h1"], s1); !strings.Contains(a, "/p2p-circuit") {
		t.Fatalf("s2h1's connection to s1h1 is at %q, want relayed (no hole through a symmetric NAT)", a)
	}
}
