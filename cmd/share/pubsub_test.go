package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// subProcess is a running `share pubsub sub`, its lines in a channel.
type subProcess struct {
	cmd   *exec.Cmd
	lines chan string
}

func startSub(t *testing.T, rp string, args ...string) *subProcess {
	t.Helper()
	cmd := exec.Command(shareBin, append([]string{"pubsub", "sub"}, args...)...)
	cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &subProcess{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		io.Copy(io.Discard, out)
		close(s.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return s
}

// next returns the next line within d.
func (s *subProcess) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			t.Fatal("sub exited")
		}
		return l
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
	}
	return ""
}

// TestPubsubDaemons: two connected daemons; one subscribes (lines,
// --json, and two topics on one sub), the other publishes (argument and
// stdin); ls and peers show the subscriptions.
func TestPubsubDaemons(t *testing.T) {
	r1, r2 := t.TempDir(), t.TempDir()
	d1 := startDaemon(t, r1)
	startDaemon(t, r2)
	fails(t, t.TempDir(), "no daemon is running", "pubsub", "ls")
	ok(t, r2, "connect", d1.addrs[0])
	var id2 struct{ ID string }
	json.Unmarshal([]byte(ok(t, r2, "id", "--json")), &id2)

	plain := startSub(t, r1, "chat")
	js := startSub(t, r1, "--json", "chat")
	both := startSub(t, r1, "news", "chat")
	waitFor(t, 10*time.Second, "r1 to list its subscriptions and r2 to see them", func() bool {
		return strings.Join(strings.Fields(ok(t, r1, "pubsub", "ls")), " ") == "chat news" &&
			strings.Contains(ok(t, r2, "pubsub", "peers", "news"), strings.TrimSpace(d1.addrs[0][strings.LastIndex(d1.addrs[0], "/")+1:])) &&
			strings.Contains(ok(t, r2, "pubsub", "peers", "chat"), strings.TrimSpace(d1.addrs[0][strings.LastIndex(d1.addrs[0], "/")+1:]))
	})
	ok(t, r2, "pubsub", "pub", "chat", "hello")
	if got := plain.next(t, 10*time.Second); got != "hello" {
		t.Errorf("sub printed %q, want hello", got)
	}
	var m struct {
		From, Seqno, Topic string
		Data               []byte
	}
	if err := json.Unmarshal([]byte(js.next(t, 10*time.Second)), &m); err != nil {
		t.Fatal(err)
	}
	if m.From != id2.ID || string(m.Data) != "hello" || m.Topic != "chat" || m.Seqno == "" {
		t.Errorf("sub --json: %+v", m)
	}
	if r := run(t, r2, []byte("two\nlines"), "pubsub", "pub", "chat", "-"); r.code != 0 {
		t.Fatalf("pub from stdin: %d %s", r.code, r.stderr)
	}
	if got := plain.next(t, 10*time.Second); got != `"two\nlines"` {
		t.Errorf("sub printed %q, want the quoted two lines", got)
	}
	ok(t, r2, "pubsub", "pub", "news", "extra")
	for _, want := range []string{"hello", `"two\nlines"`, "extra"} {
		if got := both.next(t, 10*time.Second); got != want {
			t.Errorf("sub of two topics printed %q, want %q", got, want)
		}
	}
	fails(t, r2, "topic", "pubsub", "pub", "", "x")
}

// TestPubsubDisabled: with Pubsub.Enabled false the commands say so.
func TestPubsubDisabled(t *testing.T) {
	rp := t.TempDir()
	ok(t, rp, "config", "set", "Pubsub.Enabled", "false")
	startDaemon(t, rp)
	fails(t, rp, "Pubsub.Enabled", "pubsub", "pub", "chat", "x")
	fails(t, rp, "Pubsub.Enabled", "pubsub", "ls")
}
