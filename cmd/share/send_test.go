package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/repo"
)

// TestLANSendReceive: on a LAN of 3 hosts, h1 runs 'share send' of a
// directory with no repository of its own and prints a code; h3, with a
// fresh repository and no configuration, runs 'share receive CODE',
// finds h1 through mDNS, and writes identical bytes; the sender then
// exits 0 having said what it sent. A wrong code fails h3 at once (exit
// 1, one line) and the sender, told, keeps waiting. --json both sides.
func TestLANSendReceive(t *testing.T) {
	l := newLab(t, 3)
	work := t.TempDir()
	src := filepath.Join(work, "photos")
	data := randBytes(t, 24<<20)
	writeFile(t, filepath.Join(src, "big.bin"), data)
	writeFile(t, filepath.Join(src, "sub", "note.txt"), []byte("hello\n"))

	sender := l.share("h1", filepath.Join(work, "r1-unused"), "send", "--json", src)
	stdout, err := sender.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	sender.Stderr = &stderr
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- sender.Wait()
	}()
	t.Cleanup(func() { sender.Process.Kill() })
	var first struct {
		Code, Name string
		Size       int64
	}
	select {
	case line := <-lines:
		if err := json.Unmarshal([]byte(line), &first); err != nil || first.Name != "photos" || first.Size != int64(len(data))+6 {
			t.Fatalf("send's first line %q: %+v %v", line, first, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("send printed no code: %s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(work, "r1-unused")); err == nil {
		t.Fatal("send created the user's repository")
	}

	r3 := filepath.Join(work, "r3")
	parts := strings.SplitN(first.Code, "-", 3)
	wrongWord := "tunnel"
	if parts[2] == wrongWord {
		wrongWord = "crystal"
	}
	wrong := parts[0] + "-" + parts[1] + "-" + wrongWord
	start := time.Now()
	msg, err := l.share("h3", r3, "receive", wrong, "-o", filepath.Join(work, "never")).CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "wrong code") || strings.Count(strings.TrimSpace(string(msg)), "\n") != 0 {
		t.Fatalf("receive with a wrong code: %v\n%s", err, msg)
	}
	t.Logf("a wrong code failed in %v: %s", time.Since(start), strings.TrimSpace(string(msg)))

	dst := filepath.Join(work, "got")
	start = time.Now()
	recv := l.share("h3", r3, "receive", "--json", first.Code, "-o", dst)
	var rerr bytes.Buffer
	recv.Stderr = &rerr
	out, err := recv.Output()
	if err != nil {
		t.Fatalf("receive on h3: %v\n%s", err, rerr.String())
	}
	t.Logf("receive of 24 MiB on h3: %v", time.Since(start))
	if rerr.Len() != 0 || !strings.Contains(string(out), `"Path"`) {
		t.Fatalf("receive --json: stdout %q, stderr %q", out, rerr.String())
	}
	got, err := os.ReadFile(filepath.Join(dst, "big.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("h3 got different bytes (%d bytes, %v)", len(got), err)
	}
	if note, _ := os.ReadFile(filepath.Join(dst, "sub", "note.txt")); string(note) != "hello\n" {
		t.Fatalf("note.txt: %q", note)
	}
	select {
	case line := <-lines:
		var end struct {
			Sent string
			Size int64
		}
		if err := json.Unmarshal([]byte(line), &end); err != nil || end.Sent != "photos" || end.Size != first.Size {
			t.Fatalf("send's last line %q: %v", line, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("send did not say what it sent")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("send exited with %v: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("send did not exit")
	}
	if stderr.Len() != 0 {
		t.Fatalf("send --json wrote to stderr: %s", stderr.String())
	}
	if _, err := os.Stat(r3); err == nil {
		t.Fatal("receive created the user's repository")
	}
}

// TestLANSendReceiveViaDHT: with mDNS off in the user's repositories
// (which send and receive read, without opening them), h1 and h3 know
// only h2's daemon (a DHT server) as bootstrap peer: the receiver finds
// the sender through the rendezvous's provider record.
func TestLANSendReceiveViaDHT(t *testing.T) {
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
	boot := `["/ip4/10.77.0.2/tcp/4001/p2p/` + id2.ID + `"]`
	configure(t, r1, "Bootstrap", boot)
	configure(t, r3, "Bootstrap", boot)
	l.startDaemon(t, "h2", r2)
	data := randBytes(t, 4<<20)
	src := filepath.Join(work, "data.bin")
	writeFile(t, src, data)

	sender := l.share("h1", r1, "send", "-q", src)
	stdout, err := sender.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	sender.Stderr = &stderr
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Process.Kill() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("send -q printed no code: %s", stderr.String())
	}
	code := strings.TrimSpace(sc.Text())
	dst := filepath.Join(work, "got.bin")
	start := time.Now()
	if msg, err := l.share("h3", r3, "receive", "-q", code, "-o", dst, "--timeout", "60s").CombinedOutput(); err != nil {
		t.Fatalf("receive through the DHT: %v\n%s", err, msg)
	}
	t.Logf("receive through the DHT on h3: %v", time.Since(start))
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, data) {
		t.Fatal("h3 got different bytes")
	}
	done := make(chan error, 1)
	go func() { done <- sender.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("send exited with %v: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("send did not exit")
	}
}

// TestTempNodeTakesSwarmKey: the temporary repository of send and
// receive gets the private network's key of the user's repository (it
// reached none of the network's peers without it), and its config.
func TestTempNodeTakesSwarmKey(t *testing.T) {
	user := filepath.Join(t.TempDir(), "repo")
	ok(t, user, "init")
	t.Setenv("SHARE_PATH", user) // repoPath, in this process
	if err := repo.GenerateSwarmKey(filepath.Join(user, repo.SwarmKeyFile)); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(user, repo.SwarmKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	err = withTempNode(t.TempDir(), "", false, func(n *node.Node) error {
		got, err := os.ReadFile(filepath.Join(n.Repo.Path, repo.SwarmKeyFile))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return errors.New("a different swarm key")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("temporary repository: %v", err)
	}
}
