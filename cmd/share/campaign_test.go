package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// longRun reports whether the long versions of the hardening tests run
// (SHARE_LONG=1); CI runs the short ones.
func longRun() bool { return os.Getenv("SHARE_LONG") != "" }

// proc is a share process running in the background.
type proc struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
	done     chan struct{}
	start    time.Time
	ready    chan struct{} // closed when a daemon prints "daemon ready"
	addrs    []string      // a daemon's "listening on" addresses
}

// spawn starts the binary with SHARE_PATH=rp without waiting for it.
func spawn(t *testing.T, rp string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(shareBin, args...), done: make(chan struct{}), ready: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	p.cmd.Stderr = &p.err
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.out.WriteString(line + "\n")
			if a, ok := strings.CutPrefix(line, "listening on "); ok {
				p.addrs = append(p.addrs, a)
			}
			if line == "daemon ready" {
				close(p.ready)
			}
		}
		io.Copy(io.Discard, stdout)
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill SIGKILLs p and reports whether it was still running.
func (p *proc) kill() bool {
	select {
	case <-p.done:
		return false
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// wait waits up to d for p to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration, what string) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.kill()
		t.Fatalf("%s: still running after %v\nstderr: %s", what, d, p.err.String())
		return -1
	}
}

// startDaemonAt runs `share daemon` in rp as configured (see
// configureDaemon) and waits for "daemon ready".
func startDaemonAt(t *testing.T, rp string) *proc {
	t.Helper()
	p := spawn(t, rp, "daemon")
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatalf("daemon in %s exited before ready: %s", rp, p.err.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon in %s not ready after 30s: %s", rp, p.err.String())
	}
	return p
}

// stopDaemon stops a daemon with SIGTERM and checks it exits cleanly.
func stopDaemon(t *testing.T, p *proc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second, "daemon after SIGTERM"); code != 0 {
		t.Fatalf("daemon exit %d after SIGTERM: %s", code, p.err.String())
	}
}

// configureDaemon prepares rp for a loopback daemon on port (0: any),
// with mDNS and the gateway off and the given bootstrap peers.
func configureDaemon(t *testing.T, rp string, port int, bootstrap ...string) {
	t.Helper()
	b, _ := json.Marshal(append([]string{}, bootstrap...))
	configure(t, rp,
		"Addresses.Listen", fmt.Sprintf(`["/ip4/127.0.0.1/tcp/%d"]`, port),
		"Discovery.MDNS", "false",
		"Addresses.Gateway", "",
		"Bootstrap", string(b))
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// repoStat returns `share repo stat --json`.
func repoStat(t *testing.T, rp string) (st struct{ Blocks, Bytes, Pins int64 }) {
	t.Helper()
	if err := json.Unmarshal([]byte(ok(t, rp, "repo", "stat", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// consistent checks what must hold after any crash: every block is
// intact, every pin's DAG complete.
func consistent(t *testing.T, rp, after string) {
	t.Helper()
	if r := run(t, rp, nil, "repo", "verify"); r.code != 0 {
		t.Fatalf("after %s: repo verify exit %d: %s%s", after, r.code, r.stdout, r.stderr)
	}
	if r := run(t, rp, nil, "pin", "verify"); r.code != 0 {
		t.Fatalf("after %s: pin verify exit %d: %s%s", after, r.code, r.stdout, r.stderr)
	}
}

// oneLine checks that a failed command said one line "share: ..." with no
// stack trace.
func oneLine(t *testing.T, what string, p *proc) string {
	t.Helper()
	s := strings.TrimRight(p.err.String(), "\n")
	if strings.Count(s, "\n") != 0 || !strings.HasPrefix(s, "share: ") || strings.Contains(s, "goroutine ") {
		t.Fatalf("%s: stderr %q, want one line 'share: ...'", what, s)
	}
	return s
}

// campaign is the state of a crash campaign: repositories, content and the
// tally of kills.
type campaign struct {
	t    *testing.T
	work string
	size int
	rng  *rand.Rand

	srv, a, g, d, h string // repositories (see TestCrashCampaign)
	srvPort         int
	srvD            *proc
	file            []byte // on srv, pinned
	fileCID         string
	aBlocks         int64 // blocks of A's baseline pin

	est      map[string]time.Duration // how long each operation takes when left alone
	kills    map[string]int
	misses   map[string]int // the operation finished before the kill
	messages map[string]map[string]int
	getLost  []time.Duration // re-run get time minus an undisturbed get's
	resumed  []int64         // blocks a killed get left in the cache
	n        int
}

// TestCrashCampaign SIGKILLs, at random moments, `share add`, `share get`
// (from a daemon over loopback, found through Bootstrap), `share gc`, the
// daemon an add streams through, the daemon a get runs in, and the
// serving daemon while a get fetches from it. After each kill the
// repositories must verify, every pin must be complete, and the
// interrupted operation must succeed when run again (a get writing the
// same bytes). SHARE_LONG=1 runs at least 9 kills of each kind (54) on
// 64 MiB files; the default is one of each on 8 MiB.
func TestCrashCampaign(t *testing.T) {
	perKind, size := 1, 8<<20
	if longRun() {
		perKind, size = 9, 64<<20
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	c := &campaign{t: t, work: t.TempDir(), size: size, rng: rand.New(rand.NewPCG(seed, 1)),
		est: map[string]time.Duration{}, kills: map[string]int{}, misses: map[string]int{}, messages: map[string]map[string]int{}}
	c.setup()
	kinds := []struct {
		name string
		fn   func() bool
	}{
		{"add", c.killAdd},
		{"gc", c.killGC},
		{"get", c.killGet},
		{"daemon during add", c.killDaemonAdd},
		{"daemon during get", c.killDaemonGet},
		{"serving daemon during get", c.killServer},
	}
	for round := 0; ; round++ {
		done := true
		for _, k := range kinds {
			if c.kills[k.name] >= perKind {
				continue
			}
			if c.kills[k.name]+c.misses[k.name] >= 4*perKind+2 {
				t.Fatalf("%s: %d runs finished before the kill, %d killed: the kill window is wrong", k.name, c.misses[k.name], c.kills[k.name])
			}
			done = false
			c.n++
			if k.fn() {
				c.kills[k.name]++
			} else {
				c.misses[k.name]++
			}
		}
		if done {
			break
		}
	}
	c.report()
}

func (c *campaign) setup() {
	t := c.t
	c.srv, c.a, c.g, c.d, c.h = c.repo("srv"), c.repo("a"), c.repo("g"), c.repo("d"), c.repo("h")
	c.srvPort = freePort(t)
	configureDaemon(t, c.srv, c.srvPort)
	c.srvD = startDaemonAt(t, c.srv)
	boot := c.srvD.addrs[0]
	configureDaemon(t, c.g, 0, boot)
	configureDaemon(t, c.h, 0, boot)
	configureDaemon(t, c.d, 0)

	c.file = randBytes(t, c.size)
	src := filepath.Join(c.work, "served")
	writeFile(t, src, c.file)
	c.fileCID = strings.TrimSpace(ok(t, c.srv, "add", "-Q", src))
	// A keeps a pin of its own that every crash must leave complete.
	ok(t, c.a, "add", "-Q", "--name", "baseline", src)
	c.aBlocks = repoStat(t, c.a).Blocks

	// How long each operation takes undisturbed: the kill lands at a
	// uniform moment in [0, 0.7 x that].
	start := time.Now()
	c.getOK(c.g, "baseline get")
	c.est["get"] = time.Since(start)
	ok(t, c.g, "gc")
	// The fastest of three: the first add runs with cold caches, and a
	// kill after the end proves nothing.
	for i := 0; i < 3; i++ {
		f := c.newFile()
		start = time.Now()
		ok(t, c.a, "add", "-Q", "--pin=false", f)
		if d := time.Since(start); i == 0 || d < c.est["add"] {
			c.est["add"] = d
		}
		os.Remove(f)
	}
	c.garbage()
	start = time.Now()
	ok(t, c.a, "gc")
	c.est["gc"] = time.Since(start)
	t.Logf("undisturbed: add %v, get %v, gc %v (%d MiB)", c.est["add"], c.est["get"], c.est["gc"], c.size>>20)
}

func (c *campaign) repo(name string) string { return filepath.Join(c.work, "repo-"+name) }

// newFile writes a fresh random file and returns its path.
func (c *campaign) newFile() string {
	p := filepath.Join(c.work, fmt.Sprintf("in-%d", c.n))
	writeFile(c.t, p, randBytes(c.t, c.size))
	return p
}

// garbage gives gc work in A: unpinned blocks, many of them small.
func (c *campaign) garbage() {
	p := c.newFile()
	ok(c.t, c.a, "add", "-Q", "--pin=false", "--chunker", "size-16384", p)
	os.Remove(p)
}

// delay is a random moment in [0, 0.7 x est]: the machine may run faster
// than when est was measured, and a kill after the end proves nothing.
// The kills' sleeps for it are the campaign's subject, not waits.
func (c *campaign) delay(est time.Duration) time.Duration {
	return time.Duration(c.rng.Int64N(int64(est)*7/10 + 1))
}

// note tallies a failed command's message, without CIDs and numbers.
func (c *campaign) note(kind string, p *proc) {
	msg := oneLine(c.t, kind, p)
	f := strings.Fields(msg)
	for i, w := range f {
		if strings.HasPrefix(w, "baf") || strings.ContainsAny(w, "0123456789") {
			f[i] = "_"
		}
	}
	msg = strings.Join(f, " ")
	if c.messages[kind] == nil {
		c.messages[kind] = map[string]int{}
	}
	c.messages[kind][msg]++
}

// getOK gets the served file into a fresh path in rp and checks the bytes;
// it returns how long the get took.
func (c *campaign) getOK(rp, what string) time.Duration {
	t := c.t
	dst := filepath.Join(c.work, fmt.Sprintf("out-%d", c.n))
	start := time.Now()
	r := run(t, rp, nil, "get", c.fileCID, "-o", dst, "--timeout", "20s")
	took := time.Since(start)
	if r.code != 0 {
		v := run(t, rp, nil, "-v", "get", c.fileCID, "-o", dst, "--timeout", "5s")
		t.Fatalf("%s: get exit %d after %v: %s\nagain with -v: exit %d\n%s\nserving daemon running: %v, state %v, stderr:\n%s",
			what, r.code, took, r.stderr, v.code, v.stderr, running(c.srvD), c.srvD.cmd.ProcessState, c.srvD.err.String())
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, c.file) {
		t.Fatalf("%s: get wrote %d different bytes (%v)", what, len(got), err)
	}
	os.Remove(dst)
	return took
}

// noOutput checks that a killed get left no partial output where it was
// asked to write (a get killed after it renamed its complete output into
// place, while it stored the last blocks, leaves the whole file: that is
// fine); it removes temporary files beside it.
func (c *campaign) noOutput(dst string) {
	if got, err := os.ReadFile(dst); err == nil {
		if !bytes.Equal(got, c.file) {
			c.t.Fatalf("a killed get left a partial output %s (%d of %d bytes): it must appear only when complete", dst, len(got), len(c.file))
		}
		os.Remove(dst)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), "*"+filepath.Base(dst)+"*"))
	for _, l := range leftovers {
		os.RemoveAll(l)
	}
}

// killAdd kills an add of a new file in A (no daemon).
func (c *campaign) killAdd() bool {
	t := c.t
	src := c.newFile()
	defer os.Remove(src)
	p := spawn(t, c.a, "add", "-Q", src)
	time.Sleep(c.delay(c.est["add"]))
	killed := p.kill()
	consistent(t, c.a, "killed add")
	pinsBefore := ok(t, c.a, "pin", "ls", "-q")
	root := strings.TrimSpace(ok(t, c.a, "add", "-Q", src))
	if n := strings.Count(pinsBefore, "\n"); n > 2 || n == 2 && !strings.Contains(pinsBefore, root) {
		t.Fatalf("killed add left a pin that is not its root %s: %q", root, pinsBefore)
	}
	ok(t, c.a, "pin", "verify")
	ok(t, c.a, "pin", "rm", root)
	ok(t, c.a, "gc")
	if st := repoStat(t, c.a); st.Blocks != c.aBlocks || st.Pins != 1 {
		t.Fatalf("after killed add, re-add, unpin and gc: %+v, want %d blocks and the baseline pin", st, c.aBlocks)
	}
	return killed
}

// killGC kills a gc in A that has garbage to remove.
func (c *campaign) killGC() bool {
	t := c.t
	c.garbage()
	p := spawn(t, c.a, "gc")
	time.Sleep(c.delay(c.est["gc"]))
	killed := p.kill()
	consistent(t, c.a, "killed gc")
	ok(t, c.a, "gc")
	if st := repoStat(t, c.a); st.Blocks != c.aBlocks || st.Pins != 1 {
		t.Fatalf("after killed gc and gc: %+v, want %d blocks and the baseline pin", st, c.aBlocks)
	}
	return killed
}

// killGet kills a get in G (no daemon) fetching from the serving daemon.
func (c *campaign) killGet() bool {
	t := c.t
	ok(t, c.g, "gc")
	dst := filepath.Join(c.work, fmt.Sprintf("killed-%d", c.n))
	p := spawn(t, c.g, "get", c.fileCID, "-o", dst, "--timeout", "20s")
	time.Sleep(c.delay(c.est["get"]))
	killed := p.kill()
	if killed {
		c.noOutput(dst)
	}
	consistent(t, c.g, "killed get")
	if !killed {
		return false
	}
	c.resumed = append(c.resumed, repoStat(t, c.g).Blocks)
	c.getLost = append(c.getLost, c.getOK(c.g, "get after a killed get")-c.est["get"])
	os.Remove(dst)
	return killed
}

// killDaemonAdd kills D's daemon while an add streams a new file through
// it; the add must fail with one line, promptly, and D must open without
// the daemon (its api.sock is stale) and verify.
func (c *campaign) killDaemonAdd() bool {
	t := c.t
	src := c.newFile()
	defer os.Remove(src)
	d := startDaemonAt(t, c.d)
	p := spawn(t, c.d, "add", "-Q", src)
	time.Sleep(c.delay(c.est["add"]))
	killed := d.kill()
	code := p.wait(t, 30*time.Second, "add whose daemon was killed")
	if code != 0 {
		c.note("add whose daemon was killed", p)
	}
	consistent(t, c.d, "daemon killed during add")
	d = startDaemonAt(t, c.d)
	root := strings.TrimSpace(ok(t, c.d, "add", "-Q", src))
	if code == 0 && strings.TrimSpace(p.out.String()) != root {
		t.Fatalf("add through the killed daemon printed %q, re-add %s", p.out.String(), root)
	}
	ok(t, c.d, "pin", "verify")
	ok(t, c.d, "pin", "rm", root)
	ok(t, c.d, "gc")
	stopDaemon(t, d)
	if st := repoStat(t, c.d); st.Blocks != 0 || st.Pins != 0 {
		t.Fatalf("D after unpin and gc: %+v, want empty", st)
	}
	return killed && code != 0
}

// killDaemonGet kills H's daemon while a get runs through it.
func (c *campaign) killDaemonGet() bool {
	t := c.t
	ok(t, c.h, "gc")
	d := startDaemonAt(t, c.h)
	dst := filepath.Join(c.work, fmt.Sprintf("killed-%d", c.n))
	p := spawn(t, c.h, "get", c.fileCID, "-o", dst, "--timeout", "20s")
	time.Sleep(c.delay(c.est["get"]))
	killed := d.kill()
	code := p.wait(t, 30*time.Second, "get whose daemon was killed")
	if code != 0 {
		c.note("get whose daemon was killed", p)
		c.noOutput(dst)
	}
	os.RemoveAll(dst)
	consistent(t, c.h, "daemon killed during get")
	d = startDaemonAt(t, c.h)
	c.getOK(c.h, "get after its daemon was killed")
	stopDaemon(t, d)
	return killed && code != 0
}

// killServer kills the serving daemon while G gets from it, checks the
// server's repository, and restarts it on the same port: the get may
// finish (the bootstrap peer is redialled) or fail with one line; a re-run
// must succeed.
func (c *campaign) killServer() bool {
	t := c.t
	ok(t, c.g, "gc")
	dst := filepath.Join(c.work, fmt.Sprintf("killed-%d", c.n))
	p := spawn(t, c.g, "get", c.fileCID, "-o", dst, "--timeout", "20s")
	time.Sleep(c.delay(c.est["get"]))
	if !running(p) {
		if p.cmd.ProcessState.ExitCode() != 0 {
			t.Fatalf("undisturbed get failed: %s", p.err.String())
		}
		os.Remove(dst)
		return false
	}
	killed := c.srvD.kill()
	consistent(t, c.srv, "serving daemon killed")
	c.srvD = startDaemonAt(t, c.srv)
	code := p.wait(t, 60*time.Second, "get whose server was killed")
	took := time.Since(p.start)
	if code != 0 {
		c.note("get whose server was killed", p)
		c.noOutput(dst)
		c.getOK(c.g, "get after the server was killed")
	} else {
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, c.file) {
			t.Fatalf("get across a server restart wrote %d different bytes (%v)", len(got), err)
		}
		c.getLost = append(c.getLost, took-c.est["get"])
	}
	os.Remove(dst)
	return killed
}

func (c *campaign) report() {
	t := c.t
	var kinds []string
	total := 0
	for k, n := range c.kills {
		kinds = append(kinds, fmt.Sprintf("%s: %d killed, %d finished first", k, n, c.misses[k]))
		total += n
	}
	sort.Strings(kinds)
	t.Logf("%d kills in %d runs:\n  %s", total, c.n, strings.Join(kinds, "\n  "))
	for k, m := range c.messages {
		for msg, n := range m {
			t.Logf("%s (%d): %s", k, n, msg)
		}
	}
	if len(c.getLost) > 0 {
		sort.Slice(c.getLost, func(i, j int) bool { return c.getLost[i] < c.getLost[j] })
		t.Logf("get time lost to a kill (re-run or across a restart, minus %v undisturbed): median %v, max %v",
			c.est["get"], c.getLost[len(c.getLost)/2].Round(time.Millisecond), c.getLost[len(c.getLost)-1].Round(time.Millisecond))
	}
	t.Logf("blocks a killed get left for its re-run: %v (of %d)", c.resumed, c.size>>20+1)
}

// running reports whether p has not exited yet.
func running(p *proc) bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}
