package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/share-p2p/share/node"
)

// daemon is a running `share daemon` process.
type daemon struct {
	cmd    *exec.Cmd
	addrs  []string
	done   chan error
	stderr *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gateway returns the daemon's gateway URL from its stderr.
func (d *daemon) gateway(t *testing.T) string {
	t.Helper()
	var url string
	waitFor(t, 10*time.Second, "the gateway line", func() bool {
		for _, line := range strings.Split(d.stderr.String(), "\n") {
			if rest, found := strings.CutPrefix(line, "gateway on "); found {
				url = strings.Fields(rest)[0]
				return true
			}
		}
		return false
	})
	return strings.TrimSuffix(url, "/")
}

// startDaemon starts a daemon on a loopback port in repo rp and waits for
// "daemon ready".
func startDaemon(t *testing.T, rp string) *daemon {
	t.Helper()
	ok(t, rp, "config", "set", "Addresses.Listen", `["/ip4/127.0.0.1/tcp/0"]`)
	ok(t, rp, "config", "set", "Discovery.MDNS", "false")
	ok(t, rp, "config", "set", "Addresses.Gateway", "127.0.0.1:0")
	cmd := exec.Command(shareBin, "daemon")
	cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, done: make(chan error, 1), stderr: stderr}
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

	// A second daemon on the same repository is refused, naming the first.
	r = run(t, rp, nil, "daemon")
	if want := fmt.Sprintf("share: a daemon is already running (pid %d)\n", d.cmd.Process.Pid); r.code != 1 || r.stderr != want {
		t.Fatalf("second daemon: exit %d, stderr %q; want %q", r.code, r.stderr, want)
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

// TestDaemonPeersTraffic: after a get between two daemons, 'share peers'
// says, for each side, the blocks and bytes that moved and over which
// protocol, in --json and in its line.
func TestDaemonPeersTraffic(t *testing.T) {
	r1, r2, work := t.TempDir(), t.TempDir(), t.TempDir()
	d1 := startDaemon(t, r1)
	startDaemon(t, r2)
	data := randBytes(t, 3<<20+5)
	writeFile(t, filepath.Join(work, "f"), data)
	c := strings.TrimSpace(ok(t, r1, "add", "-Q", filepath.Join(work, "f")))
	ok(t, r2, "connect", d1.addrs[0])
	ok(t, r2, "get", c, "-o", filepath.Join(work, "out"))
	id1 := d1.addrs[0][strings.LastIndex(d1.addrs[0], "/")+1:]

	peer := func(rp string) node.PeerInfo {
		t.Helper()
		var p node.PeerInfo
		if err := json.Unmarshal([]byte(ok(t, rp, "peers", "--json")), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got := peer(r2)
	if got.ID != id1 || got.Protocol != "share" || got.BytesIn < int64(len(data)) || got.BlocksIn < 4 || got.BytesOut != 0 || got.Relayed {
		t.Errorf("the getter's view of the provider: %+v, want %d bytes in over share", got, len(data))
	}
	served := peer(r1)
	if served.BytesOut < got.BytesIn || served.BlocksOut < got.BlocksIn || served.Protocol != "share" {
		t.Errorf("the provider's view of the getter: %+v, want what the getter got (%d bytes) out", served, got.BytesIn)
	}
	line := ok(t, r2, "peers")
	if !strings.Contains(line, " share in ") || !strings.Contains(line, fmt.Sprintf("%d blocks) out 0 B/s (0 B, 0 blocks)", got.BlocksIn)) {
		t.Errorf("peers line %q lacks the protocol and figures", line)
	}
}

// TestDaemonGatewayExportImport: the daemon serves its content on the
// gateway (bytes, ranges, ETag, listing, metrics, read-only), and a DAG
// moves between repositories as a CAR file.
func TestDaemonGatewayExportImport(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	d := startDaemon(t, rp)
	data := randBytes(t, 2<<20+77)
	dir := filepath.Join(work, "site")
	writeFile(t, filepath.Join(dir, "big.bin"), data)
	writeFile(t, filepath.Join(dir, "index.txt"), []byte("hello gateway\n"))
	root := strings.TrimSpace(ok(t, rp, "add", "-r", "-Q", dir))
	gw := d.gateway(t)

	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", gw+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get("/ipfs/" + root + "/big.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("gateway file: %d, %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
	}
	resp, body = get("/ipfs/"+root+"/big.bin", "Range", "bytes=1000-1999")
	if resp.StatusCode != 206 || !bytes.Equal(body, data[1000:2000]) {
		t.Fatalf("gateway range: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, body = get("/ipfs/" + root + "/"); resp.StatusCode != 200 || !strings.Contains(string(body), "index.txt") {
		t.Fatalf("gateway listing: %d %q", resp.StatusCode, body)
	}
	if resp, body = get("/metrics"); resp.StatusCode != 200 || !strings.Contains(string(body), "share_store_blocks") {
		t.Fatalf("metrics: %d %q", resp.StatusCode, body)
	}
	if resp, err := http.Post(gw+"/ipfs/"+root, "text/plain", strings.NewReader("x")); err != nil || resp.StatusCode != 405 {
		t.Fatalf("POST to the gateway: %v %v", resp, err)
	}

	// export through the daemon, import into another repository.
	r := run(t, rp, nil, "export", root)
	if r.code != 0 || len(r.stdout) < len(data) {
		t.Fatalf("export: exit %d, %d bytes, %s", r.code, len(r.stdout), r.stderr)
	}
	carFile := filepath.Join(work, "site.car")
	writeFile(t, carFile, []byte(r.stdout))
	other := t.TempDir()
	if out := ok(t, other, "import", carFile); !strings.Contains(out, root) {
		t.Fatalf("import printed %q", out)
	}
	if pins := ok(t, other, "pin", "ls"); !strings.Contains(pins, root) {
		t.Fatalf("import did not pin the root: %q", pins)
	}
	ok(t, other, "repo", "verify")
	bad := []byte(r.stdout)
	bad[len(bad)-10] ^= 0xff // inside the last block
	writeFile(t, carFile, bad)
	fails(t, t.TempDir(), "hash mismatch", "import", carFile)
}

// TestBootstrapCommands: add (validated), ls, rm, with and without a
// daemon; a bootstrap peer added while the daemon runs is dialled at once.
func TestBootstrapCommands(t *testing.T) {
	rp := t.TempDir()
	var other struct{ ID string }
	json.Unmarshal([]byte(ok(t, t.TempDir(), "id", "--json")), &other)
	a := "/ip4/10.9.9.9/tcp/4001/p2p/" + other.ID
	fails(t, rp, "/p2p/ID", "bootstrap", "add", "/ip4/10.9.9.9/tcp/4001")
	ok(t, rp, "bootstrap", "add", a)
	ok(t, rp, "bootstrap", "add", a) // no duplicates
	if got := ok(t, rp, "bootstrap", "ls"); got != a+"\n" {
		t.Fatalf("bootstrap ls = %q", got)
	}
	ok(t, rp, "bootstrap", "rm", a)
	if got := ok(t, rp, "bootstrap", "ls"); got != "" {
		t.Fatalf("after rm: %q", got)
	}

	// Through a running daemon: the new peer is dialled without a restart.
	d1 := startDaemon(t, t.TempDir())
	startDaemon(t, rp)
	ok(t, rp, "bootstrap", "add", d1.addrs[0])
	id1 := d1.addrs[0][strings.LastIndex(d1.addrs[0], "/")+1:]
	waitFor(t, 15*time.Second, "the daemon to dial its new bootstrap peer", func() bool {
		return strings.Contains(ok(t, rp, "peers", "-q"), id1)
	})
	if got := ok(t, rp, "config", "get", "Bootstrap"); !strings.Contains(got, id1) {
		t.Fatalf("config get through the daemon: %q", got)
	}
	ok(t, rp, "bootstrap", "rm", "--all")
}

// TestPrivateNetwork: nodes that share swarm.key connect and fetch; a node
// without it cannot connect at all.
func TestPrivateNetwork(t *testing.T) {
	r1, r2, r3 := t.TempDir(), t.TempDir(), t.TempDir()
	ok(t, r1, "init", "--private")
	fails(t, r1, "exist", "init", "--private") // never overwritten
	key, err := os.ReadFile(filepath.Join(r1, "swarm.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(r1, "swarm.key")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("swarm.key mode %v", fi.Mode())
	}
	writeFile(t, filepath.Join(r2, "swarm.key"), key)
	d1 := startDaemon(t, r1)
	startDaemon(t, r2)
	startDaemon(t, r3) // no key
	fails(t, r3, "connect", "connect", d1.addrs[0])
	if out := ok(t, r2, "connect", d1.addrs[0]); !strings.Contains(out, "connected") {
		t.Fatalf("connect with the key: %q", out)
	}
	f := filepath.Join(t.TempDir(), "secret.txt")
	writeFile(t, f, []byte("members only\n"))
	c := strings.TrimSpace(ok(t, r1, "add", "-Q", f))
	if got := ok(t, r2, "cat", c); got != "members only\n" {
		t.Fatalf("cat inside the private network: %q", got)
	}
	if p := ok(t, r1, "peers", "-q"); strings.Count(p, "12D3KooW") != 1 {
		t.Fatalf("the keyless node got in: peers %q", p)
	}
}

// TestAPISocketOtherUser: the API socket is mode 0600, so another user
// (nobody) cannot talk to the daemon.
func TestAPISocketOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("SHARE_REQUIRE_LAB") != "" {
			t.Fatal("needs root to run a command as another user")
		}
		t.Skip("needs root to run a command as another user")
	}
	// Directories anyone may traverse: only the socket's mode keeps others
	// out (t.TempDir's parents are 0700).
	base, err := os.MkdirTemp("", "share-sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	rp := filepath.Join(base, "repo")
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(rp, 0o755); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, rp)
	sock := filepath.Join(rp, "api.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("api.sock: %v %v", fi, err)
	}
	probe := func(uid uint32) error {
		// The system python, which user nobody may run (a pyenv shim in
		// root's home may not be).
		cmd := exec.Command("/usr/bin/python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])", sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		if err != nil && !strings.Contains(string(out), "PermissionError") {
			t.Fatalf("probe as uid %d failed for another reason: %v\n%s", uid, err, out)
		}
		return err
	}
	if err := probe(0); err != nil {
		t.Fatalf("the owner cannot connect: %v", err)
	}
	if err := probe(65534); err == nil {
		t.Fatal("user nobody connected to the API socket")
	}
}

// TestDaemonCatIntoFile: through a daemon, `share cat` hands its stdout to
// the daemon, which writes into it: at the file's offset (an append keeps
// what was there), and a closed pipe ends the command quietly with the
// status of SIGPIPE.
func TestDaemonCatIntoFile(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	startDaemon(t, rp)
	data := randBytes(t, 3<<20+7)
	f := filepath.Join(work, "f.bin")
	writeFile(t, f, data)
	c := strings.TrimSpace(ok(t, rp, "add", "-Q", f))

	outPath := filepath.Join(work, "out")
	writeFile(t, outPath, []byte("prefix\n"))
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(shareBin, "cat", c)
	cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cat >> file: %v, stderr %s", err, stderr.String())
	}
	out.Close()
	if got, _ := os.ReadFile(outPath); !bytes.Equal(got, append([]byte("prefix\n"), data...)) {
		t.Fatalf("cat >> file: %d bytes, want the prefix then the %d bytes", len(got), len(data))
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close() // nobody reads
	stderr.Reset()
	cmd = exec.Command(shareBin, "cat", c)
	cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	cmd.Stdout, cmd.Stderr = pw, &stderr
	err = cmd.Run()
	pw.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 141 || stderr.Len() != 0 {
		t.Fatalf("cat into a closed pipe: %v, stderr %q; want exit 141 and nothing said", err, stderr.String())
	}
	// The daemon is unharmed.
	if got := run(t, rp, nil, "cat", c); got.code != 0 || got.stdout != string(data) {
		t.Fatalf("cat after the closed pipe: exit %d, stderr %s", got.code, got.stderr)
	}
}

// TestDaemonPrintsDialableAddrs: a daemon listening on 0.0.0.0 prints the
// addresses of its interfaces (loopback among them), which peers can
// dial, not /ip4/0.0.0.0/..., and the same ones share id prints.
func TestDaemonPrintsDialableAddrs(t *testing.T) {
	rp := t.TempDir()
	configure(t, rp, "Addresses.Listen", `["/ip4/0.0.0.0/tcp/0"]`, "Discovery.MDNS", "false", "Addresses.Gateway", "")
	d := startDaemonAt(t, rp)
	defer stopDaemon(t, d)
	loopback := false
	for _, a := range d.addrs {
		if strings.Contains(a, "/0.0.0.0/") {
			t.Errorf("the daemon prints the undialable %s", a)
		}
		loopback = loopback || strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/")
	}
	var id struct{ Addresses []string }
	json.Unmarshal([]byte(ok(t, rp, "id", "--json")), &id)
	if !loopback || !slices.Equal(id.Addresses, d.addrs) {
		t.Fatalf("the daemon printed %q; share id prints %q", d.addrs, id.Addresses)
	}
}
