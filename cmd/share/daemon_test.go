package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is a running `share daemon` process.
type daemon struct {
	cmd   *exec.Cmd
	addrs []string
	done  chan error
}

// startDaemon starts a daemon on a loopback port in repo rp and waits for
// "daemon ready".
func startDaemon(t *testing.T, rp string) *daemon {
	t.Helper()
	ok(t, rp, "config", "set", "Addresses.Listen", `["/ip4/127.0.0.1/tcp/0"]`)
	ok(t, rp, "config", "set", "Discovery.MDNS", "false")
	cmd := exec.Command(shareBin, "daemon")
	cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, found := strings.CutPrefix(line, "listening on "); found {
				d.addrs = append(d.addrs, a)
			}
			if line == "daemon ready" {
				close(ready)
			}
		}
		io.Copy(io.Discard, out)
		d.done <- cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-d.done:
		t.Fatalf("daemon exited before ready: %v\n%s", err, stderr.String())
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("daemon not ready after 20s\n%s", stderr.String())
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		t.Errorf("daemon did not stop within 15s of SIGTERM")
	}
}

func TestDaemonServesCommands(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	d := startDaemon(t, rp)
	if len(d.addrs) != 1 || !strings.HasPrefix(d.addrs[0], "/ip4/127.0.0.1/tcp/") {
		t.Fatalf("listening lines: %v", d.addrs)
	}
	var id struct {
		ID        string
		Addresses []string
	}
	if err := json.Unmarshal([]byte(ok(t, rp, "id", "--json")), &id); err != nil {
		t.Fatal(err)
	}
	if len(id.Addresses) != 1 || id.Addresses[0] != d.addrs[0] || !strings.HasSuffix(id.Addresses[0], "/p2p/"+id.ID) {
		t.Fatalf("id with daemon = %+v, daemon said %v", id, d.addrs)
	}
	if fi, err := os.Stat(filepath.Join(rp, "api.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("api.sock: %v %v", fi, err)
	}

	// Everything goes through the daemon (it holds the repository).
	data := randBytes(t, 3<<20+5)
	f := filepath.Join(work, "f.bin")
	writeFile(t, f, data)
	c := strings.TrimSpace(ok(t, rp, "add", "-Q", f))
	if got := run(t, rp, nil, "cat", c); got.code != 0 || !bytes.Equal([]byte(got.stdout), data) {
		t.Fatalf("cat through daemon: exit %d, %d bytes, stderr %s", got.code, len(got.stdout), got.stderr)
	}
	r := run(t, rp, data, "add", "-Q", "-")
	if strings.TrimSpace(r.stdout) != c {
		t.Fatalf("add - through daemon: %q, want %s (stderr %s)", r.stdout, c, r.stderr)
	}
	dir := filepath.Join(work, "dir")
	writeFile(t, filepath.Join(dir, "a.txt"), []byte("a"))
	if out := ok(t, rp, "add", "-r", dir); !strings.Contains(out, " dir/a.txt\n") || !strings.Contains(out, " dir\n") {
		t.Fatalf("add -r through daemon printed %q", out)
	}
	out := filepath.Join(work, "out.bin")
	ok(t, rp, "get", c, "-o", out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("get through daemon wrote different bytes")
	}
	if pins := ok(t, rp, "pin", "ls"); !strings.Contains(pins, c) {
		t.Fatalf("pin ls through daemon: %q", pins)
	}
	ok(t, rp, "repo", "verify")
	ok(t, rp, "gc")
	fails(t, rp, "not found locally", "cat", "--timeout", "1s", "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku")
	fails(t, rp, "invalid CID", "cat", "nope")

	// A second daemon on the same repository is refused.
	r = run(t, rp, nil, "daemon")
	if r.code != 1 || !strings.Contains(r.stderr, "in use") {
		t.Fatalf("second daemon: exit %d, stderr %q", r.code, r.stderr)
	}

	d.stop(t)
	if _, err := os.Stat(filepath.Join(rp, "api.sock")); err == nil {
		t.Fatal("api.sock left behind after a clean stop")
	}
	// Without the daemon the repository opens in-process again.
	ok(t, rp, "cat", c)
}

func TestDaemonConnectPeers(t *testing.T) {
	r1, r2 := t.TempDir(), t.TempDir()
	d1 := startDaemon(t, r1)
	startDaemon(t, r2)
	fails(t, t.TempDir(), "no daemon is running", "peers")
	fails(t, r2, "/p2p", "connect", strings.Split(d1.addrs[0], "/p2p/")[0])
	// The right address with someone else's PeerID is refused.
	var other struct{ ID string }
	json.Unmarshal([]byte(ok(t, t.TempDir(), "id", "--json")), &other)
	fails(t, r2, "connect", "connect", strings.Split(d1.addrs[0], "/p2p/")[0]+"/p2p/"+other.ID)

	out := ok(t, r2, "connect", d1.addrs[0])
	id1 := d1.addrs[0][strings.LastIndex(d1.addrs[0], "/")+1:]
	if !strings.Contains(out, id1) {
		t.Fatalf("connect printed %q", out)
	}
	waitFor(t, 10*time.Second, "both daemons to list each other", func() bool {
		return strings.Contains(ok(t, r2, "peers", "-q"), id1) && strings.Count(ok(t, r1, "peers", "-q"), "12D3KooW") == 1
	})
}
