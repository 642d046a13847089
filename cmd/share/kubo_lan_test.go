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

	"github.com/share-p2p/share/internal/kubotest"
)

// labKubo is a kubo node on a host of the lab LAN.
type labKubo struct {
	l          *lab
	host, path string
	id         string
}

// kuboBinary returns kubo's ipfs binary of SHARE_KUBO (kubotest.Binary:
// it fails when SHARE_REQUIRE_KUBO=1, skips otherwise).
func kuboBinary(t *testing.T) string { return kubotest.Binary(t) }

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
	kuboData := randBytes(t, 2<<20)
	kuboCID := strings.TrimSpace(k3.ok(t, bin, "add", "-Q", "--pin=true", writeTemp(t, kuboData)))
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

	// kubo on h1 reads kubo h3's file: the provider record it found
	// through share gives it h3's address.
	start = time.Now()
	got, err := k1.cmd(bin, "cat", "--timeout", "30s", kuboCID).Output()
	if err != nil || !bytes.Equal(got, kuboData) {
		t.Fatalf("ipfs cat on h1 of h3's file: %d bytes (want %d), %v", len(got), len(kuboData), err)
	}
	t.Logf("ipfs cat across share: %v", time.Since(start))
}

// TestLANShareKuboShareChain: mDNS off everywhere, share on h1 and h3
// bootstrap to kubo on h2 only. h1's add announces through kubo's LAN
// DHT; h3 (a fresh repository, no daemon) knows only kubo and learns h1
// from kubo's DHT (in its lookups, or as the root's provider), dials it
// and gets the file over share's protocol. With kubo's routing off
// (Routing.Type none) the get fails.
func TestLANShareKuboShareChain(t *testing.T) {
	bin := kuboBinary(t)
	l := newLab(t, 3)
	k2 := newLabKubo(t, l, bin, "h2", false, "")
	boot := `["/ip4/10.77.0.2/tcp/4001/p2p/` + k2.id + `"]`
	r1, r3 := filepath.Join(t.TempDir(), "r1"), filepath.Join(t.TempDir(), "r3")
	for _, r := range []string{r1, r3} {
		configure(t, r, "Network", "ipfs", "Discovery.MDNS", "false", "Addresses.Gateway", "", "Bootstrap", boot)
	}
	id1 := shareID(t, r1)
	k2.start(t, bin)
	l.startDaemon(t, "h1", r1)

	data := randBytes(t, 3<<20)
	c := l.add(t, "h1", r1, data)
	// add announces the root through kubo's DHT; wait until kubo holds
	// the record so that h3's one get does not race the announcement.
	d := waitUntil(t, 30*time.Second, "kubo (h2) finds share's (h1) provider record", func() (bool, string) {
		out, _ := k2.cmd(bin, "routing", "findprovs", "-n", "1", c).CombinedOutput()
		return strings.Contains(string(out), id1), string(out)
	})
	t.Logf("h1's announcement reached kubo in %v", d)
	got, r := l.labGet(t, "h3", r3, c)
	if !bytes.Equal(got, data) {
		t.Fatalf("h3 got %d bytes, want %d", len(got), len(data))
	}
	n, proto := bytesFrom(t, r)
	if len(n) != 1 || n[id1] < int64(len(data)) || proto[id1] != "/ipfs/blocks/1.0.0" {
		t.Fatalf("want every byte from share on h1 (%s) over /ipfs/blocks/1.0.0: %+v", id1, r.From)
	}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.bin")
	writeFile(t, p, data)
	return p
}

// getReport is what `share get --json` prints.
type getReport struct {
	Cid, Path string
	Fetched   int64
	From      []peerJSON
}

// labGet runs `share get --json c` on host with repository rp (no daemon:
// a fresh node that finds peers by itself) and returns the file's bytes
// and the report.
func (l *lab) labGet(t *testing.T, host, rp, c string) ([]byte, getReport) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out.bin")
	start := time.Now()
	cmd := l.share(host, rp, "-v", "get", "--json", "--timeout", "30s", c, "-o", dst)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("get %s on %s: %v\n%s", c, host, err, stderr.String())
	}
	var r getReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("get --json: %v\n%s", err, out)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("get of %d bytes on %s: %v, from %+v", len(b), host, time.Since(start), r.From)
	if os.Getenv("SHARE_TEST_GETLOG") != "" {
		t.Logf("stderr:\n%s", stderr.String())
	}
	return b, r
}

// bytesFrom returns the bytes each peer sent and the protocol it sent them
// over, failing if a peer sent bytes over two protocols.
func bytesFrom(t *testing.T, r getReport) (map[string]int64, map[string]string) {
	t.Helper()
	n, proto := map[string]int64{}, map[string]string{}
	for _, f := range r.From {
		if f.Bytes == 0 {
			continue
		}
		if p, ok := proto[f.Peer]; ok && p != f.Protocol {
			t.Fatalf("%s sent over %s and %s", f.Peer, p, f.Protocol)
		}
		n[f.Peer] += f.Bytes
		proto[f.Peer] = f.Protocol
	}
	return n, proto
}

// TestLANKuboExchange: blocks flow both ways between kubo and share on a
// LAN where they found each other by mDNS alone (no bootstrap peer, no
// configuration but share's network). h1 runs kubo, h2 a share daemon,
// h3 is a share getter with a fresh repository and no daemon. The LAN's
// links are limited so that neither provider of the mixed get can serve
// the whole file before the getter has found the other.
func TestLANKuboExchange(t *testing.T) {
	bin := kuboBinary(t)
	l := newLab(t, 3, "--rate", "200mbit")
	k := newLabKubo(t, l, bin, "h1", true, "")
	r2, r3 := filepath.Join(t.TempDir(), "r2"), filepath.Join(t.TempDir(), "r3")
	configure(t, r2, "Network", "ipfs", "Addresses.Gateway", "")
	configure(t, r3, "Network", "ipfs", "Addresses.Gateway", "")
	id2 := shareID(t, r2)
	k.start(t, bin)
	l.startDaemon(t, "h2", r2)

	t.Run("ShareGetsKubosDefaultCID", func(t *testing.T) {
		data := randBytes(t, 3<<20)
		c := strings.TrimSpace(k.ok(t, bin, "add", "-Q", writeTemp(t, data)))
		if !strings.HasPrefix(c, "Qm") {
			t.Fatalf("kubo's default CID is %s, not CIDv0", c)
		}
		got, r := l.labGet(t, "h3", r3, c)
		if !bytes.Equal(got, data) {
			t.Fatalf("got %d bytes, not kubo's %d", len(got), len(data))
		}
		n, proto := bytesFrom(t, r)
		if len(n) != 1 || proto[k.id] != "/ipfs/bitswap/1.2.0" || n[k.id] < int64(len(data)) {
			t.Fatalf("want every byte from kubo (%s) over bitswap 1.2.0: %+v", k.id, r.From)
		}
	})

	t.Run("KuboCatsShares", func(t *testing.T) {
		data := randBytes(t, 3<<20)
		c := l.add(t, "h2", r2, data)
		start := time.Now()
		got, err := k.cmd(bin, "cat", "--timeout", "30s", c).Output()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ipfs cat %s: %d bytes (want %d), %v", c, len(got), len(data), err)
		}
		t.Logf("ipfs cat of share's %d bytes: %v", len(data), time.Since(start))
	})

	t.Run("KuboAndShareProviders", func(t *testing.T) {
		// Large enough (1.3 s at 200 Mbit/s) that the share provider,
		// found first, does not finish before kubo has joined even on a
		// loaded machine.
		data := randBytes(t, 32<<20)
		src := writeTemp(t, data)
		kc := strings.TrimSpace(k.ok(t, bin, "add", "-Q", "--cid-version", "1", "--raw-leaves",
			"--hash", "blake3", "--chunker", "size-1048576", src))
		sc := l.add(t, "h2", r2, data)
		if kc != sc {
			t.Fatalf("kubo's CID %s, share's %s: not the same file", kc, sc)
		}
		got, r := l.labGet(t, "h3", r3, sc)
		if !bytes.Equal(got, data) {
			t.Fatalf("got %d bytes, want %d", len(got), len(data))
		}
		n, proto := bytesFrom(t, r)
		if n[k.id] == 0 || proto[k.id] != "/ipfs/bitswap/1.2.0" {
			t.Errorf("kubo (%s) sent %d bytes over %q, want some over /ipfs/bitswap/1.2.0", k.id, n[k.id], proto[k.id])
		}
		t.Logf("kubo sent %d bytes, share %d", n[k.id], n[id2])
		if n[id2] == 0 || proto[id2] != "/ipfs/blocks/1.0.0" {
			t.Errorf("share (%s) sent %d bytes over %q, want some over /ipfs/blocks/1.0.0", id2, n[id2], proto[id2])
		}
	})
}
