package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pathTree adds dir/{big.bin, sub/{a.txt, b.txt}} to the repository rp
// and returns the root's CID, the CID of sub, and big.bin's bytes.
func pathTree(t *testing.T, rp string) (root, sub string, big []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dir")
	big = randBytes(t, 3<<20+12345)
	writeFile(t, filepath.Join(dir, "big.bin"), big)
	writeFile(t, filepath.Join(dir, "sub", "a.txt"), []byte("a\n"))
	writeFile(t, filepath.Join(dir, "sub", "b.txt"), []byte("b\n"))
	out := ok(t, rp, "add", "-r", "--json", dir)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var a struct{ Name, Cid string }
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("add --json line %q: %v", line, err)
		}
		switch a.Name {
		case "dir":
			root = a.Cid
		case "dir/sub":
			sub = a.Cid
		}
	}
	if root == "" || sub == "" {
		t.Fatalf("add --json did not list dir and dir/sub:\n%s", out)
	}
	return root, sub, big
}

// runIn runs the binary in the working directory wd.
func runIn(t *testing.T, wd, rp string, args ...string) result {
	t.Helper()
	cmd := exec.Command(shareBin, args...)
	cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	cmd.Dir = wd
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

// checkPaths runs the commands that take content on paths of the tree
// that pathTree added (to rp or to a peer rp fetches from), in every
// form kubo writes them.
func checkPaths(t *testing.T, rp, root, sub string, big []byte) {
	t.Helper()
	for _, arg := range []string{root + "/sub/a.txt", "/ipfs/" + root + "/sub/a.txt", "ipfs://" + root + "/sub//a.txt"} {
		if got := ok(t, rp, "cat", arg); got != "a\n" {
			t.Errorf("cat %s = %q", arg, got)
		}
	}
	if got := run(t, rp, nil, "cat", "/ipfs/"+root+"/big.bin"); got.code != 0 || !bytes.Equal([]byte(got.stdout), big) {
		t.Errorf("cat ROOT/big.bin: exit %d, %d bytes, stderr %s", got.code, len(got.stdout), got.stderr)
	}
	// Several arguments are written one after another, as kubo's cat does.
	if got := ok(t, rp, "cat", root+"/sub/b.txt", "/ipfs/"+root+"/sub/a.txt", root+"/sub/b.txt"); got != "b\na\nb\n" {
		t.Errorf("cat of three paths = %q", got)
	}
	if ls := ok(t, rp, "ls", root+"/sub/"); !strings.Contains(ls, "a.txt") || !strings.Contains(ls, "b.txt") || strings.Contains(ls, "big.bin") {
		t.Errorf("ls ROOT/sub/ = %q", ls)
	}

	// get writes the path's last name by default, as kubo's get does.
	wd := t.TempDir()
	if r := runIn(t, wd, rp, "get", root+"/sub/a.txt"); r.code != 0 {
		t.Fatalf("get ROOT/sub/a.txt: exit %d: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(wd, "a.txt")); err != nil || string(b) != "a\n" {
		t.Errorf("get ROOT/sub/a.txt wrote %q, %v into ./a.txt", b, err)
	}
	if r := runIn(t, wd, rp, "get", "/ipfs/"+root+"/sub"); r.code != 0 {
		t.Fatalf("get /ipfs/ROOT/sub: exit %d: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(wd, "sub", "b.txt")); err != nil || string(b) != "b\n" {
		t.Errorf("get /ipfs/ROOT/sub: sub/b.txt = %q, %v", b, err)
	}
	out := filepath.Join(wd, "big")
	ok(t, rp, "get", root+"/big.bin", "-o", out)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, big) {
		t.Errorf("get ROOT/big.bin -o: %d bytes, want %d", len(b), len(big))
	}

	// pin add pins, and prints, the CID the path names.
	if got := ok(t, rp, "pin", "add", "/ipfs/"+root+"/sub"); got != "pinned "+sub+" recursive\n" {
		t.Errorf("pin add /ipfs/ROOT/sub printed %q, want the CID of sub", got)
	}
	if pins := ok(t, rp, "pin", "ls"); !strings.Contains(pins, sub+" recursive") {
		t.Errorf("pin ls after pin add of a path: %q", pins)
	}
	if got := ok(t, rp, "pin", "rm", root+"/sub"); got != "unpinned "+sub+"\n" {
		t.Errorf("pin rm ROOT/sub printed %q", got)
	}
}

// checkPathErrors: a bad argument says what is wrong with it, a missing
// name says which under what, and nothing is written before a typo.
func checkPathErrors(t *testing.T, rp, root string) {
	t.Helper()
	fails(t, rp, `no link named "nope" under `+root+"/sub", "cat", root+"/sub/nope/x")
	fails(t, rp, `no link named "x" under `+root+"/big.bin", "ls", "/ipfs/"+root+"/big.bin/x")
	fails(t, rp, `no link named "nope" under `+root, "pin", "add", root+"/nope")
	fails(t, rp, `invalid path "/ipfs/notacid/a"`, "get", "/ipfs/notacid/a")
	fails(t, rp, `invalid CID "notacid"`, "cat", root+"/sub/a.txt", "notacid")
	fails(t, rp, "DNSLink names are not supported", "cat", "/ipns/example.com/a")
	fails(t, rp, "no . or .. segments", "cat", root+"/sub/../big.bin")
	if r := run(t, rp, nil, "cat", root+"/sub/a.txt", root+"/nope"); r.stdout != "a\n" || r.code != 1 {
		t.Errorf("cat A MISSING: exit %d, stdout %q; want A's bytes, then the error", r.code, r.stdout)
	}
	if r := run(t, rp, nil, "cat", root+"/sub/a.txt", "bafy"); r.stdout != "" || r.code != 1 {
		t.Errorf("cat A TYPO: exit %d, stdout %q; want nothing written", r.code, r.stdout)
	}
}

// TestPathsLocal: every command that takes content takes a path in a
// directory (kubo's forms), alone and through a daemon.
func TestPathsLocal(t *testing.T) {
	rp := t.TempDir()
	root, sub, big := pathTree(t, rp)
	checkPaths(t, rp, root, sub, big)
	checkPathErrors(t, rp, root)

	// export writes the DAG the path names, with that root.
	car := run(t, rp, nil, "export", root+"/sub")
	other := t.TempDir()
	carFile := filepath.Join(t.TempDir(), "sub.car")
	writeFile(t, carFile, []byte(car.stdout))
	if got := ok(t, other, "import", carFile); got != "imported "+sub+"\n" {
		t.Errorf("import of export ROOT/sub: %q, want the root %s", got, sub)
	}

	startDaemon(t, rp)
	checkPaths(t, rp, root, sub, big)
	checkPathErrors(t, rp, root)
	// The DHT commands look up the CID the path names.
	fails(t, rp, "no provider of "+sub+" found", "routing", "findprovs", "/ipfs/"+root+"/sub")
	fails(t, rp, `no link named "nope" under `+root, "provide", root+"/nope")
}

// TestCatSeveralIntoFile: through a daemon, which writes into the file
// itself, cat A B > FILE leaves A then B in it.
func TestCatSeveralIntoFile(t *testing.T) {
	rp := t.TempDir()
	root, _, big := pathTree(t, rp)
	startDaemon(t, rp)
	outPath := filepath.Join(t.TempDir(), "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(shareBin, "cat", root+"/big.bin", root+"/sub/a.txt", root+"/big.bin")
	cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cat A B A > file: %v, stderr %s", err, stderr.String())
	}
	out.Close()
	want := append(append(append([]byte(nil), big...), "a\n"...), big...)
	if got, _ := os.ReadFile(outPath); !bytes.Equal(got, want) {
		t.Fatalf("cat A B A > file: %d bytes, want %d", len(got), len(want))
	}
}

// TestPathsFetched: the same commands on paths of content that another
// node has: the directories on the way and the content they lead to come
// from it (a daemon on loopback, the repository's bootstrap peer).
func TestPathsFetched(t *testing.T) {
	provider, getter := t.TempDir(), t.TempDir()
	root, sub, big := pathTree(t, provider)
	d := startDaemon(t, provider)
	ok(t, getter, "config", "set", "Discovery.MDNS", "false")
	ok(t, getter, "config", "set", "Addresses.Listen", `["/ip4/127.0.0.1/tcp/0"]`)
	ok(t, getter, "config", "set", "Bootstrap", `["`+d.addrs[0]+`"]`)
	if got := ok(t, getter, "cat", root+"/sub/a.txt"); got != "a\n" {
		t.Fatalf("cat ROOT/sub/a.txt from the provider = %q", got)
	}
	checkPaths(t, getter, root, sub, big)
	checkPathErrors(t, getter, root)
}
