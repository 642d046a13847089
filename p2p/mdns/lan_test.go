package mdns

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/peer"
)

// lanScript finds the lab's lan script (see /work/shared/lab/lan).
func lanScript() string {
	if p := os.Getenv("SHARE_LAB_LAN"); p != "" {
		return p
	}
	if p, err := filepath.Abs("../../testdata/lab/lan"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("lan"); err == nil {
		return p
	}
	if _, err := os.Stat("/work/shared/lab/lan"); err == nil {
		return "/work/shared/lab/lan"
	}
	return ""
}

// TestLAN runs one node per host of a lab LAN (network namespaces on a
// bridge, each with a real eth0) and checks that each finds the others at
// their LAN address.
func TestLAN(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds a LAN of network namespaces")
	}
	lan := lanScript()
	if lan == "" {
		t.Skip("no lan script (set SHARE_LAB_LAN or put lan in PATH)")
	}
	if testing.Short() {
		t.Skip("short")
	}
	const hosts = 3
	env := append(os.Environ(), fmt.Sprintf("LAN_PREFIX=md%d", os.Getpid()%10000))
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(lan, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("lan %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("up", strconv.Itoa(hosts))
	t.Cleanup(func() { run("down") })

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// The hosts start one after another, each once the previous one
	// answers; each stays until every host has found every other.
	nodes := make([]*lanNode, hosts)
	for i := range hosts {
		cmd := exec.CommandContext(ctx, lan, "exec", fmt.Sprintf("h%d", i+1),
			os.Args[0], "-test.run=^TestLANNode$", "-test.v")
		cmd.Env = append(slices.Clip(env), "MDNS_LAN_NODE=1", fmt.Sprintf("MDNS_LAN_PEERS=%d", hosts-1))
		nodes[i] = startLANNode(t, cmd)
		select {
		case <-nodes[i].started:
		case <-ctx.Done():
			t.Fatalf("h%d did not start", i+1)
		}
	}
	for _, n := range nodes {
		<-n.found
	}
	results := make([]lanResult, hosts)
	for i, n := range nodes {
		n.stdin.Close()
		results[i] = <-n.result
	}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("h%d: %v\n%s", i+1, r.err, r.out)
		}
		for j, o := range results {
			want := fmt.Sprintf("/ip4/10.77.0.%d/tcp/4001", j+1)
			if i != j && r.found[o.id] != want {
				t.Errorf("h%d found h%d at %q, want %q\n%s", i+1, j+1, r.found[o.id], want, r.out)
			}
		}
		t.Logf("h%d: %s", i+1, strings.TrimSpace(grepLines(r.out, "LATENCY")))
	}
}

// A lanNode is a running TestLANNode.
type lanNode struct {
	stdin   io.Closer
	started chan struct{}  // closed when it announces, or when it exits
	found   chan struct{}  // closed when it found all its peers, or exits
	result  chan lanResult // once it has exited
}

// lanResult is what a TestLANNode printed.
type lanResult struct {
	id    string
	found map[string]string
	out   string
	err   error
}

// startLANNode starts cmd, a TestLANNode, and follows its output.
func startLANNode(t *testing.T, cmd *exec.Cmd) *lanNode {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &lanNode{stdin: stdin, started: make(chan struct{}), found: make(chan struct{}), result: make(chan lanResult, 1)}
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		waited <- err
	}()
	go func() {
		r := n.follow(pr)
		r.err = <-waited
		n.result <- r
	}()
	return n
}

// follow parses a TestLANNode's output until it ends, closing started and
// found on the node's STARTED and DONE lines, or at the end.
func (n *lanNode) follow(out io.Reader) lanResult {
	r := lanResult{found: map[string]string{}}
	var all strings.Builder
	started, found := sync.OnceFunc(func() { close(n.started) }), sync.OnceFunc(func() { close(n.found) })
	defer started()
	defer found()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "ID":
			r.id = f[1]
		case len(f) >= 3 && f[0] == "FOUND":
			r.found[f[1]] = f[2]
		case len(f) == 1 && f[0] == "STARTED":
			started()
		case len(f) == 1 && f[0] == "DONE":
			found()
		}
	}
	io.Copy(io.Discard, out) // a line too long for the scanner
	r.out = all.String()
	return r
}

func grepLines(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestLANNode is one host of TestLAN: it announces /ip4/0.0.0.0/tcp/4001 on
// every multicast interface and prints the peers it finds.
func TestLANNode(t *testing.T) {
	if os.Getenv("MDNS_LAN_NODE") == "" {
		t.Skip("run by TestLAN inside a lab host")
	}
	want, _ := strconv.Atoi(os.Getenv("MDNS_LAN_PEERS"))
	f := newFinds()
	id := newID(t)
	fmt.Println("ID", id)
	svc, err := New(Config{
		Network: "share",
		ID:      id,
		Addrs:   func() []ma.Multiaddr { return []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/tcp/4001")} },
		OnPeer: func(p peer.ID, addrs []ma.Multiaddr) {
			fmt.Println("FOUND", p, addrs[0])
			f.onPeer(p, addrs)
		},
		Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	start := time.Now()
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	fmt.Println("STARTED")
	deadline := time.After(20 * time.Second)
	first := true
	for len(f.ids()) < want {
		select {
		case <-f.ch:
			if first {
				fmt.Println("LATENCY first peer after", time.Since(start))
				first = false
			}
		case <-deadline:
			t.Fatalf("found %d of %d peers", len(f.ids()), want)
		}
	}
	fmt.Println("LATENCY all peers after", time.Since(start))
	// Stay, answering, until TestLAN closes stdin (every host has found
	// every other), so that later hosts find this one.
	fmt.Println("DONE")
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-time.After(20 * time.Second):
		t.Fatal("TestLAN never said that every host found every other")
	}
}
