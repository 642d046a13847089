package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// labKubo is a kubo node on a host of the lab LAN.
type labKubo struct {
	l          *lab
	host, path string
	id         string
}

// kuboBinary returns kubo's ipfs binary of SHARE_KUBO. Without it the test
// fails when SHARE_REQUIRE_KUBO=1 (CI) and skips otherwise.
func kuboBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SHARE_KUBO")
	if bin == "" {
		if os.Getenv("SHARE_REQUIRE_KUBO") == "1" {
			t.Fatal("SHARE_KUBO is not set (path of kubo's ipfs binary)")
		}
		t.Skip("SHARE_KUBO is not set (path of kubo's ipfs binary)")
	}
	return bin
}

// newLabKubo initialises kubo on host, listening on the host's address
// only, with no bootstrap peer but boot (if any) and mDNS as asked. The
// test profile keeps its API and gateway on the namespace's loopback.
func newLabKubo(t *testing.T, l *lab, bin, host string, mdns bool, boot string) *labKubo {
	t.Helper()
	k := &labKubo{l: l, host: host, path: filepath.Join(t.TempDir(), "ipfs-"+host)}
	k.ok(t, bin, "init", "--profile", "test")
	ip := strings.TrimSpace(l.run(t, "ip", host))
	k.ok(t, bin, "config", "--json", "Addresses.Swarm", fmt.Sprintf(`["/ip4/%s/tcp/4001"]`, ip))
	bootList := "[]"
	if boot != "" {
		bootList = `["` + boot + `"]`
	}
	k.ok(t, bin, "config", "--json", "Bootstrap", bootList)
	k.ok(t, bin, "config", "--json", "Discovery.MDNS.Enabled", fmt.Sprint(mdns))
	k.id = strings.TrimSpace(k.ok(t, bin, "config", "Identity.PeerID"))
	return k
}

func (k *labKubo) cmd(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(k.l.script, append([]string{"exec", k.host, bin}, args...)...)
	cmd.Env = append(append([]string(nil), k.l.env...), "IPFS_PATH="+k.path)
	return cmd
}

func (k *labKubo) ok(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := k.cmd(bin, args...).Output()
	if err != nil {
		t.Fatalf("ipfs %s on %s: %v", strings.Join(args, " "), k.host, err)
	}
	return string(out)
}

// start runs `ipfs daemon` and waits for "Daemon is ready".
func (k *labKubo) start(t *testing.T, bin string) {
	t.Helper()
	cmd := k.cmd(bin, "daemon", "--offline=false")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Daemon is ready") {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("kubo on %s not ready", k.host)
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

// shareID returns the PeerID of repository rp.
func shareID(t *testing.T, rp string) string {
	t.Helper()
	var id struct{ ID string }
	if err := json.Unmarshal([]byte(ok(t, rp, "id", "--json")), &id); err != nil {
		t.Fatal(err)
	}
	return id.ID
}

// waitUntil retries f until it returns true, failing after d with what.
func waitUntil(t *testing.T, d time.Duration, what string, f func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		done, last := f()
		if done {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not after %v; last: %s", what, d, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLANKuboMDNS: on a LAN of two hosts, a share daemon on network ipfs
// and a kubo daemon, both with mDNS on and nothing else configured, each
// list the other among their peers.
func TestLANKuboMDNS(t *testing.T) {
	bin := kuboBinary(t)
	l := newLab(t, 2)
	r1 := filepath.Join(t.TempDir(), "r1")
	configure(t, r1, "Network", "ipfs", "Addresses.Gateway", "")
	id1 := shareID(t, r1)
	k := newLabKubo(t, l, bin, "h2", true, "")
	l.startDaemon(t, "h1", r1)
	start := time.Now()
	k.start(t, bin)
	sharePeers := waitUntil(t, 30*time.Second, "share lists kubo", func() (bool, string) {
		out, _ := l.share("h1", r1, "peers").CombinedOutput()
		return strings.Contains(string(out), k.id), string(out)
	})
	kuboPeers := waitUntil(t, 30*time.Second, "kubo lists share", func() (bool, string) {
		out, _ := k.cmd(bin, "swarm", "peers").CombinedOutput()
		return strings.Contains(string(out), id1), string(out)
	})
	t.Logf("after kubo's daemon was ready: share lists kubo in %v, kubo lists share %v later (%v in all)",
		sharePeers, kuboPeers, time.Since(start))
}

// TestLANKuboDHTChain: mDNS off everywhere, one bootstrap peer each, a
// chain kubo (h1) - share (h2) - kubo (h3). Provider records flow both
// ways through share's LAN DHT: kubo finds share's content, share finds
// kubo's, and kubo finds the other kubo's with share in between.
func TestLANKuboDHTChain(t *testing.T) {
	bin := kuboBinary(t)
	l := newLab(t, 3)
	r2 := filepath.Join(t.TempDir(), "r2")
	configure(t, r2, "Network", "ipfs", "Discovery.MDNS", "false", "Addresses.Gateway", "")
	id2 := shareID(t, r2)
	share2 := "/ip4/10.77.0.2/tcp/4001/p2p/" + id2
	k1 := newLabKubo(t, l, bin, "h1", false, share2)
	k3 := newLabKubo(t, l, bin, "h3", false, share2)
	configure(t, r2, "Bootstrap", `["/ip4/10.77.0.3/tcp/4001/p2p/`+k3.id+`"]`)
	l.startDaemon(t, "h2", r2)
	k1.start(t, bin)
	k3.start(t, bin)

	shareCID := l.add(t, "h2", r2, randBytes(t, 1<<20))
	kuboCID := strings.TrimSpace(k3.ok(t, bin, "add", "-Q", "--pin=true", writeTemp(t, randBytes(t, 1<<20))))
	// kubo's provide needs a peer in one of its tables: share's LAN DHT.
	waitUntil(t, 30*time.Second, "kubo on h3 provides", func() (bool, string) {
		out, err := k3.cmd(bin, "routing", "provide", kuboCID).CombinedOutput()
		return err == nil, string(out)
	})

	findprovs := func(k *labKubo, c, want string) func() (bool, string) {
		return func() (bool, string) {
			out, _ := k.cmd(bin, "routing", "findprovs", "-n", "1", c).CombinedOutput()
			return strings.Contains(string(out), want), string(out)
		}
	}
	d := waitUntil(t, 30*time.Second, "kubo (h1) finds share's provider record", findprovs(k1, shareCID, id2))
	t.Logf("ipfs routing findprovs of share's CID: %v", d)
	d = waitUntil(t, 30*time.Second, "share finds kubo's provider record", func() (bool, string) {
		out, _ := l.share("h2", r2, "routing", "findprovs", "-q", "-n", "1", kuboCID).CombinedOutput()
		return strings.Contains(string(out), k3.id), string(out)
	})
	t.Logf("share routing findprovs of kubo's CID: %v", d)
	d = waitUntil(t, 30*time.Second, "kubo (h1) finds kubo (h3) through share", findprovs(k1, kuboCID, k3.id))
	t.Logf("ipfs routing findprovs across share: %v", d)
	// One lookup, timed alone now that the tables are filled.
	start := time.Now()
	if done, out := findprovs(k1, shareCID, id2)(); !done {
		t.Fatalf("second findprovs: %s", out)
	}
	t.Logf("ipfs routing findprovs (warm): %v", time.Since(start))
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.bin")
	writeFile(t, p, data)
	return p
}
