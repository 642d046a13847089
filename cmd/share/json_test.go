package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/repo"
)

// jsonCase is one run of a command with --json and what the README's
// JSON conventions say it prints.
type jsonCase struct {
	cmd  string   // the command's path after "share" ("pin ls")
	args []string // after the command's path; --json is added
	on   string   // "local" (no daemon) or "daemon"
	// lines bounds the count of stdout lines: [min, max] (max -1: any).
	lines [2]int
	keys  []string // keys every object has
	// kind, when set, is the error kind of a run that must fail: nothing
	// on stdout, one {"Error","Kind","Reason"} line on stderr.
	kind string
	raw  bool                                      // stdout is data (cat, export, completion), not JSON
	then func(t *testing.T, objs []map[string]any) // more checks of the objects
}

// TestJSONConventions holds every command to the README's JSON
// conventions: with --json, stdout is one JSON object a line (a list is
// one object per item, an empty list no line at all; never a bare array
// or value, never null), stderr has nothing on success and one JSON
// object on failure ({"Error", "Kind", "Reason"}, exit 1), including when
// the command line does not parse. Every command has a case: a new
// command without one fails the test.
func TestJSONConventions(t *testing.T) {
	local, work := t.TempDir(), t.TempDir()
	tree := filepath.Join(work, "tree")
	writeFile(t, filepath.Join(tree, "a.txt"), []byte("hello\n"))
	writeFile(t, filepath.Join(tree, "sub", "two\nlines"), randBytes(t, 3000))
	os.MkdirAll(filepath.Join(tree, "empty"), 0o755)
	if err := os.Symlink("a.txt", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(ok(t, local, "add", "-Q", "-r", tree))
	file := strings.TrimSpace(ok(t, local, "add", "-Q", "--pin=false", filepath.Join(tree, "a.txt")))
	emptyDir := strings.TrimSpace(ok(t, local, "add", "-Q", "-r", "--pin=false", filepath.Join(tree, "empty")))
	car := filepath.Join(work, "tree.car")
	writeFile(t, car, []byte(ok(t, local, "export", root)))

	dr, other := t.TempDir(), t.TempDir()
	startDaemon(t, dr)
	d2 := startDaemon(t, other)
	served := filepath.Join(work, "served")
	writeFile(t, served, randBytes(t, 5000))
	dcid := strings.TrimSpace(ok(t, dr, "add", "-Q", served))
	const missing = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"

	cases := []jsonCase{
		{cmd: "init", lines: one, keys: []string{"Path", "ID"}},
		{cmd: "add", args: []string{"-r", tree}, lines: [2]int{6, 6}, keys: []string{"Name", "Cid", "Size"}, then: addSizes},
		{cmd: "add", args: []string{"-Q", "-r", tree}, lines: one, keys: []string{"Cid"}},
		{cmd: "add", args: []string{filepath.Join(work, "nope")}, kind: "not found"},
		{cmd: "ls", args: []string{root}, lines: [2]int{4, 4}, keys: []string{"Name", "Cid", "Type"}, then: lsSizes},
		{cmd: "ls", args: []string{emptyDir}, lines: none},
		{cmd: "ls", args: []string{"notacid"}, kind: "invalid"},
		{cmd: "cat", args: []string{file}, raw: true},
		{cmd: "cat", args: []string{"notacid"}, kind: "invalid"},
		{cmd: "get", args: []string{root, "-o", filepath.Join(work, "out")}, lines: one, keys: []string{"Cid", "Path", "Fetched", "From"}},
		{cmd: "get", args: []string{root, "-o", filepath.Join(work, "out")}, kind: "exists"},
		{cmd: "pin add", args: []string{file}, lines: one, keys: []string{"Cid", "Mode"}},
		{cmd: "pin ls", lines: [2]int{2, 2}, keys: []string{"Cid", "Mode", "Name"}},
		{cmd: "pin verify", lines: [2]int{2, 2}, keys: []string{"Cid", "Ok"}, then: verifiedOk},
		{cmd: "pin rm", args: []string{file}, lines: one, keys: []string{"Cid"}},
		{cmd: "pin rm", args: []string{file}, kind: "not found"},
		{cmd: "gc", lines: one, keys: []string{"Blocks", "Bytes"}},
		{cmd: "repo stat", lines: one, keys: []string{"Path", "Blocks", "Bytes", "Pins"}},
		{cmd: "repo verify", lines: one, keys: []string{"Blocks", "Corrupt", "Breaks", "BadPins"}},
		{cmd: "config get", args: []string{"Network"}, lines: one, keys: []string{"Key", "Value"}},
		{cmd: "config get", args: []string{"Nope.Key"}, kind: "not found"},
		{cmd: "config set", args: []string{"Discovery.MDNS", "false"}, lines: one, keys: []string{"Key", "Value"}, then: valueIs(false)},
		{cmd: "config set", args: []string{"Routing.Mode", "sideways"}, kind: "invalid"},
		{cmd: "config show", lines: one, keys: []string{"Network", "Addresses", "Bootstrap"}},
		{cmd: "export", args: []string{root}, raw: true},
		{cmd: "import", args: []string{car}, lines: one, keys: []string{"Root"}},
		{cmd: "import", args: []string{filepath.Join(work, "nope.car")}, kind: "not found"},
		{cmd: "completion", args: []string{"bash"}, raw: true},
		{cmd: "completion", args: []string{"tcsh"}, kind: "invalid"},
		{cmd: "id", lines: one, keys: []string{"ID", "Addresses"}},
		{cmd: "version", lines: one, keys: []string{"Version", "Go", "Transport", "Protocols"}},
		{cmd: "bootstrap ls", lines: none},
		{cmd: "bootstrap add", args: []string{d2.addrs[0]}, lines: one, keys: []string{"Addr"}},
		{cmd: "bootstrap add", args: []string{"/ip4/1.2.3.4"}, kind: "invalid"},
		{cmd: "bootstrap ls", lines: one, keys: []string{"Addr"}},
		{cmd: "bootstrap rm", args: []string{"--all"}, lines: one, keys: []string{"Addr"}},
		{cmd: "bootstrap rm", args: []string{d2.addrs[0]}, kind: "not found"},
		{cmd: "peers", kind: "unreachable"}, // no daemon
		{cmd: "peers", on: "daemon", lines: none},
		{cmd: "connect", on: "daemon", args: []string{d2.addrs[0]}, lines: one, keys: []string{"ID"}},
		{cmd: "peers", on: "daemon", lines: one, keys: []string{"ID", "Addr", "Direction", "Streams", "Since", "Relayed", "RateIn", "RateOut", "BytesIn", "BytesOut", "BlocksIn", "BlocksOut"}},
		{cmd: "provide", on: "daemon", args: []string{dcid}, lines: one, keys: []string{"Cid"}}, // the connected peer takes it
		{cmd: "routing findprovs", on: "daemon", args: []string{"-n", "1", dcid}, lines: one, keys: []string{"ID", "Addrs"}},
		{cmd: "routing findprovs", on: "daemon", args: []string{missing}, kind: "not found"},
		{cmd: "name publish", on: "daemon", args: []string{dcid}, lines: one, keys: []string{"Name", "Value", "Sequence", "Validity", "TTL", "Key", "Peers"}}, // the connected peer takes it
		{cmd: "name publish", on: "daemon", args: []string{"--key", "nokey", dcid}, kind: "not found"},
		{cmd: "name resolve", on: "daemon", args: []string{nameOf(t, dr)}, lines: one, keys: []string{"Name", "Value", "Sequence", "Validity", "TTL"}},
		{cmd: "name resolve", args: []string{"nope"}, kind: "invalid"},
		{cmd: "key gen", args: []string{"blog"}, lines: one, keys: []string{"Name", "Id", "PeerID"}},
		{cmd: "key gen", args: []string{"blog"}, kind: "exists"},
		{cmd: "key ls", lines: [2]int{2, 2}, keys: []string{"Name", "Id", "PeerID"}},
		{cmd: "key rm", args: []string{"blog"}, lines: one, keys: []string{"Name"}},
		{cmd: "key rm", args: []string{"self"}, kind: "invalid"},
		{cmd: "pubsub ls", kind: "unreachable"},
		{cmd: "pubsub ls", on: "daemon", lines: none},
		{cmd: "pubsub pub", on: "daemon", args: []string{"chat", "hello"}, lines: none},
		{cmd: "pubsub pub", on: "daemon", args: []string{"", "hello"}, kind: "invalid"},
		{cmd: "pubsub peers", on: "daemon", args: []string{"chat"}, lines: none},
		// sub runs until interrupted: TestPubsubDaemons reads its lines.
		{cmd: "pubsub sub", on: "daemon", args: []string{""}, kind: "invalid"},
		// follow runs until interrupted: TestFollowDaemons reads its lines.
		{cmd: "follow", on: "daemon", args: []string{"--once", nameOf(t, dr), "-o", filepath.Join(work, "followed")}, kind: "invalid"}, // the name points at a file
		{cmd: "follow", args: []string{"nope", "-o", filepath.Join(work, "followed")}, kind: "invalid"},
		{cmd: "follow ls", kind: "unreachable"},
		{cmd: "follow ls", on: "daemon", lines: none},
		{cmd: "daemon", on: "daemon", kind: "exists"},               // a second one; the first, see daemonJSON
		{cmd: "pin", args: []string{"frobnicate"}, kind: "invalid"}, // a group's unknown command
		// send and receive succeed in TestLANSendReceive (two hosts).
		{cmd: "send", args: []string{filepath.Join(work, "nope")}, kind: "not found"},
		{cmd: "receive", args: []string{"7-no-such"}, kind: "invalid"},
	}
	covered := map[string]bool{"daemon": false}
	for _, c := range cases {
		rp := local
		if c.on == "daemon" {
			rp = dr
		}
		args := append(append(strings.Fields(c.cmd), c.args...), "--json")
		checkJSONRun(t, c, args, run(t, rp, nil, args...))
		covered[c.cmd] = true
	}
	daemonJSON(t)
	forEveryCommand(t, func(path string) {
		if !covered[path] {
			t.Errorf("share %s has no case in TestJSONConventions", path)
		}
		// A command line that does not parse is a JSON error too.
		args := append(strings.Fields(path), "--no-such-flag", "--json")
		checkJSONRun(t, jsonCase{kind: "invalid"}, args, run(t, local, nil, args...))
	})
}

// nameOf is the IPNS name of the repository at dir's own key.
func nameOf(t *testing.T, dir string) string {
	t.Helper()
	id, err := repo.LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ipns.Name(id.ID)
}

var (
	none = [2]int{0, 0}
	one  = [2]int{1, 1}
)

// checkJSONRun checks one run's output against c.
func checkJSONRun(t *testing.T, c jsonCase, args []string, r result) {
	t.Helper()
	if c.kind != "" {
		e := jsonLines(t, args, "stderr", r.stderr)
		if r.code != 1 || r.stdout != "" || len(e) != 1 || e[0]["Kind"] != c.kind ||
			!isString(e[0]["Error"]) || !isString(e[0]["Reason"]) || len(e[0]) != 3 {
			t.Errorf("share %s: exit %d, stdout %q, stderr %q; want exit 1 and one error of kind %q on stderr",
				strings.Join(args, " "), r.code, r.stdout, r.stderr, c.kind)
		}
		return
	}
	if r.code != 0 || r.stderr != "" {
		t.Errorf("share %s: exit %d, stderr %q; want 0 and nothing on stderr", strings.Join(args, " "), r.code, r.stderr)
		return
	}
	if c.raw {
		if r.stdout == "" {
			t.Errorf("share %s printed nothing", strings.Join(args, " "))
		}
		return
	}
	objs := jsonLines(t, args, "stdout", r.stdout)
	if len(objs) < c.lines[0] || (c.lines[1] >= 0 && len(objs) > c.lines[1]) {
		t.Errorf("share %s: %d lines, want %v:\n%s", strings.Join(args, " "), len(objs), c.lines, r.stdout)
	}
	for _, o := range objs {
		for _, k := range c.keys {
			if _, ok := o[k]; !ok {
				t.Errorf("share %s: no %s in %v", strings.Join(args, " "), k, o)
			}
		}
	}
	if c.then != nil && !t.Failed() {
		c.then(t, objs)
	}
}

// jsonLines decodes out as one JSON object a line, failing on anything
// else (a bare array or value, a null anywhere).
func jsonLines(t *testing.T, args []string, name, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" && out == "" {
			break
		}
		var o map[string]any
		if err := json.Unmarshal([]byte(line), &o); err != nil || o == nil {
			t.Errorf("share %s: %s line %q is not a JSON object (%v)", strings.Join(args, " "), name, line, err)
			continue
		}
		if hasNull(o) {
			t.Errorf("share %s: %s line %q has a null", strings.Join(args, " "), name, line)
		}
		objs = append(objs, o)
	}
	return objs
}

// hasNull reports whether a decoded JSON value holds a null.
func hasNull(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		for _, x := range v {
			if hasNull(x) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(v, hasNull)
	}
	return false
}

func isString(v any) bool { s, ok := v.(string); return ok && s != "" }

// byName indexes objects by their Name.
func byName(objs []map[string]any) map[string]map[string]any {
	m := make(map[string]map[string]any)
	for _, o := range objs {
		m[o["Name"].(string)] = o
	}
	return m
}

// addSizes: add's Size is the content's size for every kind of entry: a
// directory's is its files' and links' together, a symlink's its
// target's length; names are exact.
func addSizes(t *testing.T, objs []map[string]any) {
	m := byName(objs)
	for name, want := range map[string]float64{
		"tree/a.txt": 6, "tree/sub/two\nlines": 3000, "tree/link": 5, "tree/sub": 3000, "tree/empty": 0, "tree": 6 + 3000 + 5,
	} {
		if m[name] == nil || m[name]["Size"] != want {
			t.Errorf("add --json: %q is %v, want Size %v", name, m[name], want)
		}
	}
}

// lsSizes: ls gives a file's and a symlink's size, and none for a
// directory (not known without reading its tree), never a false 0.
func lsSizes(t *testing.T, objs []map[string]any) {
	m := byName(objs)
	if m["a.txt"]["Size"] != 6.0 || m["link"]["Size"] != 5.0 || m["link"]["Type"] != "symlink" {
		t.Errorf("ls --json: a.txt %v, link %v", m["a.txt"], m["link"])
	}
	for _, d := range []string{"sub", "empty"} {
		if _, has := m[d]["Size"]; has || m[d]["Type"] != "directory" {
			t.Errorf("ls --json: directory %s is %v", d, m[d])
		}
	}
}

// verifiedOk: pin verify says Ok, with no error field, of intact pins.
func verifiedOk(t *testing.T, objs []map[string]any) {
	for _, o := range objs {
		if _, has := o["Error"]; o["Ok"] != true || has || len(o) != 2 {
			t.Errorf("pin verify --json of an intact pin: %v", o)
		}
	}
}

// valueIs checks that the object's Value is want.
func valueIs(want any) func(*testing.T, []map[string]any) {
	return func(t *testing.T, objs []map[string]any) {
		if objs[0]["Value"] != want {
			t.Errorf("Value %v, want %v", objs[0]["Value"], want)
		}
	}
}

// daemonJSON: daemon --json prints one object once it serves (its ID,
// dialable addresses and gateway) and nothing else, on stdout or stderr,
// to its clean exit.
func daemonJSON(t *testing.T) {
	t.Helper()
	rp := t.TempDir()
	configure(t, rp, "Addresses.Listen", `["/ip4/127.0.0.1/tcp/0"]`, "Discovery.MDNS", "false", "Addresses.Gateway", "127.0.0.1:0")
	cmd := exec.Command(shareBin, "daemon", "--json")
	cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	stdout, _ := cmd.StdoutPipe()
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
		close(lines)
	}()
	var first string
	select {
	case first = <-lines:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("daemon --json printed nothing in 20s: %s", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	err := cmd.Wait()
	objs := jsonLines(t, []string{"daemon", "--json"}, "stdout", first)
	if len(objs) != 1 {
		t.Fatalf("daemon --json printed %q then %q", first, rest)
	}
	if err != nil || len(rest) > 0 || stderr.String() != "" ||
		!isString(objs[0]["ID"]) || !strings.HasPrefix(objs[0]["Gateway"].(string), "http://127.0.0.1:") {
		t.Errorf("daemon --json: %v; printed %q then %q; stderr %q", err, first, rest, stderr.String())
	}
	if a, _ := objs[0]["Addresses"].([]any); len(a) != 1 || !strings.HasPrefix(a[0].(string), "/ip4/127.0.0.1/tcp/") {
		t.Errorf("daemon --json addresses: %v", objs[0]["Addresses"])
	}
}

// forEveryCommand calls fn with the path (after "share") of every command
// that runs.
func forEveryCommand(t *testing.T, fn func(path string)) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			if sub.Runnable() && !sub.HasSubCommands() {
				fn(strings.TrimPrefix(sub.CommandPath(), "share "))
			}
			walk(sub)
		}
	}
	walk(newRoot(io.Discard, io.Discard))
}
