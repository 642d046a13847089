package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lab is a LAN of network namespaces made with testdata/lab/lan.
type lab struct {
	script string
	env    []string
}

// newLab brings up n hosts (h1..hn, 10.77.0.K/24, multicast on, no route
// out) under a prefix of its own, and tears them down at the end. It needs
// root; CI runs as root and sets SHARE_REQUIRE_LAB=1 so that a missing lab
// fails instead of skipping.
func newLab(t *testing.T, n int, args ...string) *lab {
	t.Helper()
	script, _ := filepath.Abs("../../testdata/lab/lan")
	if os.Geteuid() != 0 {
		if os.Getenv("SHARE_REQUIRE_LAB") != "" {
			t.Fatal("the lab LAN needs root")
		}
		t.Skip("the lab LAN needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the lab LAN needs iproute2 (ip): install it")
	}
	l := &lab{script: script, env: append(os.Environ(), fmt.Sprintf("LAN_PREFIX=t%d", os.Getpid()%100000))}
	l.run(t, append([]string{"up", fmt.Sprint(n)}, args...)...)
	t.Cleanup(func() {
		down := exec.Command(l.script, "down")
		down.Env = l.env // our prefix, not the default lab's
		down.Run()
	})
	return l
}

func (l *lab) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(l.script, args...)
	cmd.Env = l.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(l.script), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// share runs the share binary on host with repository rp.
func (l *lab) share(host, rp string, args ...string) *exec.Cmd {
	cmd := exec.Command(l.script, append([]string{"exec", host, shareBin}, args...)...)
	cmd.Env = append(append([]string(nil), l.env...), "SHARE_PATH="+rp)
	return cmd
}

// add stores data as a file on host through repository rp (its daemon,
// if one runs there) and returns the CID.
func (l *lab) add(t *testing.T, host, rp string, data []byte) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "in.bin")
	writeFile(t, src, data)
	out, err := l.share(host, rp, "add", "-Q", src).Output()
	if err != nil {
		t.Fatalf("add on %s: %v", host, err)
	}
	return strings.TrimSpace(string(out))
}

// startDaemon runs `share daemon` on host and waits for "daemon ready".
func (l *lab) startDaemon(t *testing.T, host, rp string) {
	t.Helper()
	cmd := l.share(host, rp, "daemon")
	out, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "daemon ready" {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("daemon on %s not ready: %s", host, stderr.String())
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
}

// TestLANGetViaMDNS is the main path end to end: on a LAN of 3 hosts, the
// daemon on h1 adds a 64 MiB file; h3, with a fresh repository, no
// configuration and no daemon, gets it by CID and writes identical bytes,
// having found h1 through mDNS.
func TestLANGetViaMDNS(t *testing.T) {
	l := newLab(t, 3)
	work := t.TempDir()
	r1, r3 := filepath.Join(work, "r1"), filepath.Join(work, "r3")
	l.startDaemon(t, "h1", r1)

	data := randBytes(t, 64<<20)
	c := l.add(t, "h1", r1, data)
	smallCID := l.add(t, "h1", r1, []byte("first byte\n"))

	// First byte of a small file, no daemon on the getter.
	start := time.Now()
	cat := l.share("h3", r3, "cat", "--timeout", "20s", smallCID)
	got, err := cat.Output()
	firstByte := time.Since(start)
	if err != nil || string(got) != "first byte\n" {
		t.Fatalf("cat on h3: %q, %v", got, err)
	}
	t.Logf("first byte of a small file on h3 (no daemon, mDNS): %v", firstByte)

	dst := filepath.Join(work, "out.bin")
	start = time.Now()
	get := l.share("h3", r3, "get", c, "-o", dst, "--timeout", "20s")
	if msg, err := get.CombinedOutput(); err != nil {
		t.Fatalf("get on h3: %v\n%s", err, msg)
	}
	t.Logf("get of 64 MiB on h3: %v", time.Since(start))
	b, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("h3 got different bytes (%d bytes, %v)", len(b), err)
	}
}

// configure sets config keys in repository rp (before any daemon runs).
func configure(t *testing.T, rp string, kv ...string) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		ok(t, rp, "config", "set", kv[i], kv[i+1])
	}
}

// TestLANGetViaDHT: with mDNS off everywhere, h1 and h3 know only h2 (a
// DHT server) as bootstrap peer; h1's daemon adds, h3 (no daemon) finds
// the provider record through the DHT and gets identical bytes.
func TestLANGetViaDHT(t *testing.T) {
	l := newLab(t, 3)
	work := t.TempDir()
	r1, r2, r3 := filepath.Join(work, "r1"), filepath.Join(work, "r2"), filepath.Join(work, "r3")
	for _, r := range []string{r1, r2, r3} {
		configure(t, r, "Discovery.MDNS", "false", "Addresses.Gateway", "")
	}
	var id2 struct{ ID string }
	if err := json.Unmarshal([]byte(ok(t, r2, "id", "--json")), &id2); err != nil {
		t.Fatal(err)
	}
	boot := fmt.Sprintf(`["/ip4/10.77.0.2/tcp/4001/p2p/%s"]`, id2.ID)
	configure(t, r1, "Bootstrap", boot)
	configure(t, r3, "Bootstrap", boot)
	l.startDaemon(t, "h2", r2)
	l.startDaemon(t, "h1", r1)

	data := randBytes(t, 8<<20)
	c := l.add(t, "h1", r1, data)

	// add announced the root by itself (Provide.Strategy "roots"): h2's
	// daemon comes to find h1 as its provider, with no share provide.
	var id1 struct{ ID string }
	json.Unmarshal([]byte(ok(t, r1, "id", "--json")), &id1)
	for deadline := time.Now().Add(60 * time.Second); ; {
		out, err := l.share("h2", r2, "routing", "findprovs", "-q", "-n", "1", c).CombinedOutput()
		if err == nil && strings.Contains(string(out), id1.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("add's announcement never reached h2: findprovs: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// share provide (debugging) announces again and waits for it.
	if out, err := l.share("h1", r1, "provide", c).CombinedOutput(); err != nil {
		t.Fatalf("provide: %v\n%s", err, out)
	}
	// Retry the get (each try is a fresh temporary node) in case the
	// lookup races the routing tables.
	dst := filepath.Join(work, "out.bin")
	deadline := time.Now().Add(60 * time.Second)
	for {
		msg, err := l.share("h3", r3, "get", c, "-o", dst, "--timeout", "5s").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get through the DHT: %v\n%s", err, msg)
		}
	}
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, data) {
		t.Fatal("h3 got different bytes through the DHT")
	}
}

// TestLANNetworksDoNotMix: two networks on one LAN (names "share" and
// "lab"), mDNS on: a node of one never gets content from, nor connects to,
// a node of the other.
func TestLANNetworksDoNotMix(t *testing.T) {
	l := newLab(t, 3)
	work := t.TempDir()
	r1, r2, r3 := filepath.Join(work, "r1"), filepath.Join(work, "r2"), filepath.Join(work, "r3")
	configure(t, r1, "Addresses.Gateway", "")
	configure(t, r2, "Addresses.Gateway", "", "Network", "lab")
	configure(t, r3, "Network", "lab")
	l.startDaemon(t, "h1", r1)
	l.startDaemon(t, "h2", r2)
	src := filepath.Join(work, "f.txt")
	writeFile(t, src, []byte("only on network share\n"))
	out, err := l.share("h1", r1, "add", "-Q", src).Output()
	if err != nil {
		t.Fatal(err)
	}
	c := strings.TrimSpace(string(out))
	msg, err := l.share("h3", r3, "cat", "--timeout", "3s", c).CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "not found locally") {
		t.Fatalf("a 'lab' node got content of network 'share': %v\n%s", err, msg)
	}
	// Neither daemon ever connected to the other.
	if p := strings.TrimSpace(ok(t, r1, "peers", "-q")); p != "" {
		t.Fatalf("h1 (share) has peers %q", p)
	}
}
