package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/share-p2p/share/repo"
)

// shareBin is the binary built once for the tests that run it as a user would.
var shareBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "share-bin")
	if err != nil {
		panic(err)
	}
	shareBin = filepath.Join(dir, "share")
	out, err := exec.Command("go", "build", "-o", shareBin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary produced.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the binary with SHARE_PATH=repoDir and returns its output.
func run(t *testing.T, repoDir string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(shareBin, args...)
	cmd.Env = append(os.Environ(), "SHARE_PATH="+repoDir)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{o.String(), e.String(), code}
}

// ok runs the binary and fails the test unless it exits 0.
func ok(t *testing.T, repoDir string, args ...string) string {
	t.Helper()
	r := run(t, repoDir, nil, args...)
	if r.code != 0 {
		t.Fatalf("share %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs the binary and checks it exits 1 with one line on stderr
// containing want.
func fails(t *testing.T, repoDir string, want string, args ...string) {
	t.Helper()
	r := run(t, repoDir, nil, args...)
	if r.code != 1 {
		t.Fatalf("share %v: exit %d, want 1\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) || !strings.HasPrefix(lines[0], "share: ") {
		t.Fatalf("share %v: stderr %q, want one line 'share: ...' containing %q", args, r.stderr, want)
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("share %v: stack trace in stderr: %s", args, r.stderr)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestAddCatGetLsRoundTrip(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	hello := filepath.Join(work, "hello.txt")
	writeFile(t, hello, []byte("hello world\n"))
	out := ok(t, rp, "add", hello)
	const helloCID = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"
	if out != "added "+helloCID+" hello.txt\n" {
		t.Fatalf("add printed %q", out)
	}
	if got := ok(t, rp, "add", "-Q", hello); got != helloCID+"\n" {
		t.Fatalf("add -Q printed %q", got)
	}
	if got := ok(t, rp, "cat", helloCID); got != "hello world\n" {
		t.Fatalf("cat printed %q", got)
	}

	big := randBytes(t, 3<<20+12345)
	dir := filepath.Join(work, "dir")
	writeFile(t, filepath.Join(dir, "big.bin"), big)
	writeFile(t, filepath.Join(dir, "sub", "a.txt"), []byte("a\n"))
	writeFile(t, filepath.Join(dir, "sub", "empty"), nil)
	out = ok(t, rp, "add", "-r", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("add -r printed %d lines, want 5 (3 files, 2 dirs):\n%s", len(lines), out)
	}
	last := strings.Fields(lines[len(lines)-1])
	if last[0] != "added" || last[2] != "dir" {
		t.Fatalf("last line %q should be the root directory", lines[len(lines)-1])
	}
	root := last[1]

	ls := ok(t, rp, "ls", root)
	if !strings.Contains(ls, "big.bin") || !strings.Contains(ls, "sub/") {
		t.Fatalf("ls printed %q", ls)
	}
	dst := filepath.Join(work, "out")
	ok(t, rp, "get", root, "-o", dst)
	got, err := os.ReadFile(filepath.Join(dst, "big.bin"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("get: big.bin differs (err %v)", err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "sub", "a.txt")); err != nil || string(b) != "a\n" {
		t.Fatalf("get: sub/a.txt = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "sub", "empty")); err != nil || fi.Size() != 0 {
		t.Fatalf("get: sub/empty: %v", err)
	}

	// stdin
	r := run(t, rp, big, "add", "-Q", "-")
	if r.code != 0 {
		t.Fatalf("add -: %s", r.stderr)
	}
	bigCID := strings.TrimSpace(r.stdout)
	if catted := run(t, rp, nil, "cat", bigCID); !bytes.Equal([]byte(catted.stdout), big) {
		t.Fatal("cat of stdin add differs")
	}
}

func TestBadInput(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	ok(t, rp, "init")
	before := snapshot(t, rp)
	fails(t, rp, "no such file", "add", filepath.Join(work, "nope"))
	fails(t, rp, "is a directory", "add", work)
	fails(t, rp, "invalid CID", "cat", "notacid")
	fails(t, rp, "invalid CID", "get", "bafyinvalid")
	fails(t, rp, "invalid CID", "pin", "add", "xyz")
	fails(t, rp, "not found locally", "cat", "--timeout", "1s", "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku")
	fails(t, rp, "not found locally", "get", "--timeout", "1s", "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku", "-o", filepath.Join(work, "x"))
	fails(t, rp, "not found locally", "pin", "add", "--timeout", "1s", "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku")
	fails(t, rp, "not found locally", "ls", "--timeout", "1s", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")
	fails(t, rp, "unknown config key", "config", "get", "Nope.Key")
	fails(t, rp, "unknown config key", "config", "set", "Nope", "1")
	fails(t, rp, "Routing.Mode", "config", "set", "Routing.Mode", "sideways")
	fails(t, rp, "unknown command", "frobnicate")
	fails(t, rp, "unknown flag", "add", "--frob", "x")
	if _, err := os.Stat(filepath.Join(work, "x")); err == nil {
		t.Fatal("a failed get left its output behind")
	}
	if after := snapshot(t, rp); after != before {
		t.Fatalf("bad input changed the repository:\nbefore %s\nafter  %s", before, after)
	}

	// A second process while the repository is held.
	lock, err := repo.Lock(rp)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(work, "f")
	writeFile(t, f, []byte("x"))
	fails(t, rp, "in use", "add", f)
	fails(t, rp, "in use", "config", "set", "Discovery.MDNS", "false")
	lock.Close()
	ok(t, rp, "add", f)
}

// snapshot describes the repository as the user sees it.
func snapshot(t *testing.T, rp string) string {
	t.Helper()
	var st struct{ Blocks, Bytes, Pins int64 }
	if err := json.Unmarshal([]byte(ok(t, rp, "repo", "stat", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%+v\n", st) + ok(t, rp, "pin", "ls") + ok(t, rp, "config", "show")
}

func TestPinGCStat(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	a, b := filepath.Join(work, "a"), filepath.Join(work, "b")
	writeFile(t, a, randBytes(t, 2<<20+1)) // 3 leaves + 1 root
	writeFile(t, b, randBytes(t, 1<<20))   // 1 leaf
	ca := strings.TrimSpace(ok(t, rp, "add", "-Q", a))
	cb := strings.TrimSpace(ok(t, rp, "add", "-Q", "--pin=false", b))

	var st struct{ Blocks, Bytes, Pins int64 }
	json.Unmarshal([]byte(ok(t, rp, "repo", "stat", "--json")), &st)
	if st.Blocks != 5 || st.Pins != 1 || st.Bytes < 3<<20 {
		t.Fatalf("repo stat = %+v, want 5 blocks, 1 pin", st)
	}
	if out := ok(t, rp, "pin", "ls"); !strings.Contains(out, ca+" recursive") || strings.Contains(out, cb) {
		t.Fatalf("pin ls = %q", out)
	}
	if out := ok(t, rp, "gc"); !strings.HasPrefix(out, "removed 1 blocks") {
		t.Fatalf("gc printed %q", out)
	}
	fails(t, rp, "not found locally", "cat", "--timeout", "1s", cb)
	ok(t, rp, "cat", ca)

	ok(t, rp, "pin", "add", "--name", "keep", "--direct", ca)
	if out := ok(t, rp, "pin", "ls"); !strings.Contains(out, ca+" direct keep") {
		t.Fatalf("pin ls = %q", out)
	}
	// A direct pin keeps only the root: gc removes the 3 leaves.
	if out := ok(t, rp, "gc", "--json"); !strings.Contains(out, `"Blocks":3`) {
		t.Fatalf("gc --json printed %q", out)
	}
	ok(t, rp, "pin", "verify") // the root block is all a direct pin needs
	fails(t, rp, "not found locally", "cat", "--timeout", "1s", ca)
	ok(t, rp, "pin", "rm", ca)
	fails(t, rp, "not pinned", "pin", "rm", ca)
	ok(t, rp, "gc")
	json.Unmarshal([]byte(ok(t, rp, "repo", "stat", "--json")), &st)
	if st.Blocks != 0 || st.Pins != 0 {
		t.Fatalf("after gc: %+v", st)
	}
	ok(t, rp, "repo", "verify")
}

func TestConfigAndID(t *testing.T) {
	rp := t.TempDir()
	var id struct {
		ID        string
		Addresses []string
	}
	out := ok(t, rp, "id", "--json")
	if err := json.Unmarshal([]byte(out), &id); err != nil || !strings.HasPrefix(id.ID, "12D3KooW") || id.Addresses == nil || len(id.Addresses) != 0 {
		t.Fatalf("id --json = %q (%v)", out, err)
	}
	if fi, err := os.Stat(filepath.Join(rp, repo.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity key mode: %v %v", fi.Mode(), err)
	}
	defaults := map[string]string{
		"Network":              `"share"`,
		"Addresses.Listen":     `["/ip4/0.0.0.0/tcp/4001","/ip6/::/tcp/4001"]`,
		"Addresses.Gateway":    `"127.0.0.1:8080"`,
		"Discovery.MDNS":       `true`,
		"Bootstrap":            `[]`,
		"Routing.Mode":         `"auto"`,
		"Provide.Strategy":     `"roots"`,
		"Datastore.StorageMax": `"10GB"`,
	}
	for k, want := range defaults {
		if got := strings.TrimSpace(ok(t, rp, "config", "get", k)); got != want {
			t.Errorf("config get %s = %s, want %s", k, got, want)
		}
	}
	ok(t, rp, "config", "set", "Discovery.MDNS", "false")
	ok(t, rp, "config", "set", "Network", "lab")
	ok(t, rp, "config", "set", "Addresses.Listen", `["/ip4/127.0.0.1/tcp/0"]`)
	for k, want := range map[string]string{"Discovery.MDNS": "false", "Network": `"lab"`, "Addresses.Listen": `["/ip4/127.0.0.1/tcp/0"]`} {
		if got := strings.TrimSpace(ok(t, rp, "config", "get", k)); got != want {
			t.Errorf("after set, config get %s = %s, want %s", k, got, want)
		}
	}
	fails(t, rp, "Discovery.MDNS", "config", "set", "Discovery.MDNS", `"maybe"`)
	// The same identity on every run.
	if again := ok(t, rp, "id", "--json"); again != out {
		t.Fatalf("identity changed: %s then %s", out, again)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
