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

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/car"
	"github.com/share-p2p/share/ipns"
)

// followSides runs share on the publisher's and the follower's side
// (processes on loopback, or hosts of the lab).
type followSides struct {
	pub, fol func(args ...string) *exec.Cmd
}

// followLine is a line of share follow --json.
type followLine struct {
	Name, Dir, Cid, Err string
	Sequence            uint64
	Written, Removed    int
	Unchanged           int
	Kept                []string
	Fetched             uint64
	FetchedBytes        int64
}

func (s followSides) output(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// publishFolder adds src on the publisher (1 KiB chunks) and points its
// name at it; it returns the root and the name.
func (s followSides) publishFolder(t *testing.T, src string) (root, name string) {
	t.Helper()
	root = s.output(t, s.pub("add", "-Q", "-r", "--chunker", "size-1024", src))
	name = s.output(t, s.pub("name", "publish", "-q", root))
	return root, name
}

// startFollow runs share follow --json on the follower and returns its
// lines; the process gets SIGINT at the end and must exit 0.
func (s followSides) startFollow(t *testing.T, name, dir string) <-chan followLine {
	t.Helper()
	cmd := s.fol("follow", "--json", name, "-o", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan followLine, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l followLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				l.Err = "not JSON: " + sc.Text()
			}
			lines <- l
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("follow after Ctrl-C: %v\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("follow did not stop on Ctrl-C")
		}
	})
	return lines
}

// nextVersion returns the next line of a version written, skipping
// failed attempts (a follower that starts before the DHT has the
// record), within d.
func nextVersion(t *testing.T, lines <-chan followLine, d time.Duration) followLine {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("follow exited")
			}
			if l.Err == "" {
				return l
			}
			t.Logf("follow: %s", l.Err)
		case <-deadline:
			t.Fatalf("no version within %v", d)
		}
	}
}

// followScenario: the publisher shares a folder under its name, the
// follower follows it; the publisher changes one byte of a 64 KiB file
// and publishes again; the follower's folder matches within limit,
// having fetched only the changed blocks. It returns the time the
// update took, publish to line.
func followScenario(t *testing.T, s followSides, dir string, limit time.Duration) time.Duration {
	src := filepath.Join(t.TempDir(), "site")
	files := map[string][]byte{"big.bin": randBytes(t, 64<<10), "notes/small.txt": []byte("hello\n")}
	for p, b := range files {
		writeFile(t, filepath.Join(src, p), b)
	}
	root, name := s.publishFolder(t, src)
	lines := s.startFollow(t, name, dir)
	if l := nextVersion(t, lines, 60*time.Second); l.Cid != root || l.Written != 3 {
		t.Fatalf("first version %+v, want %s with 3 paths written", l, root)
	}
	checkFolder(t, dir, files)

	// The publisher hears of the follower's subscription before it
	// announces the next version (else only the DHT poll would tell).
	id, err := ipns.ParseName(name)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the publisher to see the follower subscribe", func() bool {
		out, err := s.pub("pubsub", "peers", ipns.Topic(id)).Output()
		return err == nil && len(bytes.TrimSpace(out)) > 0
	})
	files["big.bin"][40000] ^= 0xff
	writeFile(t, filepath.Join(src, "big.bin"), files["big.bin"])
	root2 := s.output(t, s.pub("add", "-Q", "-r", "--chunker", "size-1024", src))
	start := time.Now()
	s.output(t, s.pub("name", "publish", "-q", root2))
	l := nextVersion(t, lines, 10*time.Second)
	took := time.Since(start)
	t.Logf("second version on the follower %v after publish returned: %+v", took, l)
	if l.Cid != root2 || l.Written != 1 || l.Unchanged != 1 || l.Removed != 0 {
		t.Fatalf("second version %+v, want %s with 1 file written, 1 unchanged", l, root2)
	}
	checkFolder(t, dir, files)
	// Changed: the folder's node, big.bin's root (64 links, about 3 KiB)
	// and one leaf of 1 KiB, about 4.3 KiB of a 66 KiB folder: those are
	// fetched, once each, never the 63 unchanged leaves.
	missing, missingBytes := s.newBlocks(t, root, root2)
	if missing != 3 || l.Fetched != uint64(missing) || l.FetchedBytes != missingBytes {
		t.Errorf("fetched %d blocks, %d bytes; %d blocks of %d bytes were missing", l.Fetched, l.FetchedBytes, missing, missingBytes)
	}
	if took > limit {
		t.Errorf("the follower's folder matched %v after publish, want within %v", took, limit)
	}
	return took
}

// newBlocks counts the blocks of the DAG under root2 that the DAG under
// root lacks, and their bytes, from the publisher's CAR exports.
func (s followSides) newBlocks(t *testing.T, root, root2 string) (n int, size int64) {
	t.Helper()
	old := s.carBlocks(t, root)
	for c, b := range s.carBlocks(t, root2) {
		if _, ok := old[c]; !ok {
			n, size = n+1, size+int64(b)
		}
	}
	return n, size
}

// carBlocks returns the size of each block of the DAG under root, as the
// publisher exports it.
func (s followSides) carBlocks(t *testing.T, root string) map[cid.Cid]int {
	t.Helper()
	cmd := s.pub("export", root)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("export %s: %v\n%s", root, err, stderr.String())
	}
	r, err := car.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	sizes := make(map[cid.Cid]int)
	for {
		c, data, err := r.Next()
		if err == io.EOF {
			return sizes
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes[c] = len(data)
	}
}

func checkFolder(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s in the followed folder: %d bytes, %v; want %d bytes", p, len(got), err, len(want))
		}
	}
}

// TestFollowDaemons: two daemons on loopback; share follow through the
// second keeps a folder at the first's name, and share follow ls lists
// it while it runs.
func TestFollowDaemons(t *testing.T) {
	r1, r2 := t.TempDir(), t.TempDir()
	d1 := startDaemon(t, r1)
	startDaemon(t, r2)
	ok(t, r2, "connect", d1.addrs[0])
	side := func(rp string) func(args ...string) *exec.Cmd {
		return func(args ...string) *exec.Cmd {
			cmd := exec.Command(shareBin, args...)
			cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
			return cmd
		}
	}
	dir := filepath.Join(t.TempDir(), "followed")
	followScenario(t, followSides{pub: side(r1), fol: side(r2)}, dir, 10*time.Second)
	if ls := ok(t, r2, "follow", "ls"); !strings.Contains(ls, dir) {
		t.Errorf("follow ls: %q, want %s", ls, dir)
	}
}

// TestLANFollow is issue 23's end-to-end test: on the lab LAN, h1's
// daemon publishes a folder's name, h3's daemon follows it (found through
// mDNS), h1 changes a file and publishes again: h3's folder matches
// within 2 s, having fetched only the changed blocks.
func TestLANFollow(t *testing.T) {
	l := newLab(t, 3)
	work := t.TempDir()
	r1, r3 := filepath.Join(work, "r1"), filepath.Join(work, "r3")
	for _, r := range []string{r1, r3} {
		configure(t, r, "Addresses.Gateway", "")
	}
	l.startDaemon(t, "h1", r1)
	l.startDaemon(t, "h3", r3)
	side := func(host, rp string) func(args ...string) *exec.Cmd {
		return func(args ...string) *exec.Cmd { return l.share(host, rp, args...) }
	}
	followScenario(t, followSides{pub: side("h1", r1), fol: side("h3", r3)}, filepath.Join(work, "followed"), 2*time.Second)
}

// TestFollowConfigDaemon: a daemon follows the names of config Follow
// from its start, and share follow ls and the status JSON list them.
func TestFollowConfigDaemon(t *testing.T) {
	r1, r2 := t.TempDir(), t.TempDir()
	d1 := startDaemon(t, r1)
	src := filepath.Join(t.TempDir(), "site")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("one\n"))
	root := strings.TrimSpace(ok(t, r1, "add", "-Q", "-r", src))
	run(t, r1, nil, "name", "publish", root) // no DHT peer yet: kept here, the error says so
	name := nameOf(t, r1)
	dir := filepath.Join(t.TempDir(), "followed")
	configure(t, r2, "Follow", `[{"Name":"`+name+`","Dir":"`+dir+`"}]`)
	fails(t, r2, "absolute", "config", "set", "Follow", `[{"Name":"`+name+`","Dir":"rel"}]`)
	startDaemon(t, r2)
	ok(t, r2, "connect", d1.addrs[0])
	id, _ := ipns.ParseName(name)
	waitFor(t, 20*time.Second, "r1 to see r2 subscribe", func() bool {
		return strings.TrimSpace(ok(t, r1, "pubsub", "peers", ipns.Topic(id))) != ""
	})
	// The daemon's first DHT lookup came before it had peers: the
	// announcement of the next publish brings the name.
	run(t, r1, nil, "name", "publish", root)
	waitFor(t, 20*time.Second, "the followed folder", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "a.txt"))
		return err == nil && string(b) == "one\n"
	})
	var ls struct{ Name, Dir, Cid string }
	if err := json.Unmarshal([]byte(ok(t, r2, "follow", "ls", "--json")), &ls); err != nil || ls.Cid != root || ls.Dir != dir {
		t.Errorf("follow ls --json: %+v, %v", ls, err)
	}
}
