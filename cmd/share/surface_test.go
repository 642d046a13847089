package main

import (
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestAddJSON: add --json prints one object per file and directory, with
// the same CIDs that add -Q prints and each file's size.
func TestAddJSON(t *testing.T) {
	rp, dir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "tree", "a.txt"), []byte("hello\n"))
	writeFile(t, filepath.Join(dir, "tree", "sub", "b.bin"), randBytes(t, 3<<20))
	out := ok(t, rp, "add", "-r", "--json", filepath.Join(dir, "tree"))
	got := map[string]struct {
		Cid  string
		Size uint64
	}{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var a struct {
			Name, Cid string
			Size      uint64
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("add --json line %q: %v", line, err)
		}
		got[a.Name] = struct {
			Cid  string
			Size uint64
		}{a.Cid, a.Size}
	}
	if len(got) != 4 || got["tree/a.txt"].Size != 6 || got["tree/sub/b.bin"].Size != 3<<20 {
		t.Fatalf("add --json: %+v", got)
	}
	root := strings.TrimSpace(ok(t, rp, "add", "-r", "-Q", filepath.Join(dir, "tree")))
	if got["tree"].Cid != root {
		t.Fatalf("add --json root %s, add -Q %s", got["tree"].Cid, root)
	}
}

// TestCompletionAndConfigShow: completion scripts for the three shells
// (another shell is an error), and config show listing every key.
func TestCompletionAndConfigShow(t *testing.T) {
	rp := t.TempDir()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := ok(t, rp, "completion", sh); len(out) < 200 || !strings.Contains(out, "share") {
			t.Errorf("completion %s: %d bytes", sh, len(out))
		}
	}
	fails(t, rp, "tcsh", "completion", "tcsh")
	show := ok(t, rp, "config", "show")
	for _, k := range []string{"Network", "Addresses.Listen", "Addresses.Gateway", "Discovery.MDNS", "Bootstrap",
		"Routing.Mode", "Provide.Strategy", "Datastore.StorageMax", "Limits.MaxBlockBytes"} {
		if !strings.Contains(show, k) {
			t.Errorf("config show lacks %s:\n%s", k, show)
		}
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(ok(t, rp, "config", "show", "--json")), &cfg); err != nil || cfg["Network"] != "share" {
		t.Fatalf("config show --json: %v %v", cfg, err)
	}
}

// TestEveryCommandHasAnExample: --help of every command shows an example.
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			if sub.Runnable() {
				n++
				if strings.TrimSpace(sub.Example) == "" {
					t.Errorf("%s has no example in its --help", sub.CommandPath())
				}
			}
			walk(sub)
		}
	}
	walk(newRoot(io.Discard, io.Discard))
	if n < 25 {
		t.Fatalf("only %d commands found", n)
	}
}

// TestOddNamesInLineOutput: a name with a newline, a tab or a terminal
// escape is quoted in human output (one entry, one line), like a name
// that starts with a quote (one that only holds one is not: nothing
// reads it as quoted); other names (spaces, unicode) are shown as
// they are; --json and get keep every name exact.
func TestOddNamesInLineOutput(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	tree := filepath.Join(work, "tree")
	names := []string{"new\nline", "tab\there", "esc\x1b[31mred", `"quoted"`, "plain name", "héllo wörld"}
	for _, n := range names {
		writeFile(t, filepath.Join(tree, n), []byte(n))
	}
	out := ok(t, rp, "add", "-r", tree)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(names)+1 {
		t.Fatalf("add printed %d lines for %d entries:\n%s", len(lines), len(names)+1, out)
	}
	for _, want := range []string{`"tree/new\nline"`, `"tree/tab\there"`, `"tree/esc\x1b[31mred"`, " tree/\"quoted\"\n", " tree/plain name\n", " tree/héllo wörld\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("add output lacks %s:\n%s", want, out)
		}
	}
	root := strings.Fields(lines[len(lines)-1])[1]
	ls := ok(t, rp, "ls", root)
	if n := strings.Count(ls, "\n"); n != len(names) || !strings.Contains(ls, `"new\nline"`) || !strings.Contains(ls, `"\"quoted\""`) || !strings.Contains(ls, " plain name\n") {
		t.Errorf("ls printed %d lines for %d entries:\n%s", n, len(names), ls)
	}
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(ok(t, rp, "ls", "--json", root)), "\n") {
		var e struct{ Name string }
		json.Unmarshal([]byte(line), &e)
		got[e.Name] = true
	}
	for _, n := range names {
		if !got[n] {
			t.Errorf("ls --json lacks the exact name %q: %v", n, got)
		}
	}
	pinned := ok(t, rp, "pin", "add", "--name", "two\nlines", root)
	if pl := ok(t, rp, "pin", "ls"); strings.Count(pl, "\n") != 1 || !strings.Contains(pl, `"two\nlines"`) {
		t.Errorf("pin ls of a pin named with a newline: %q (pin add: %q)", pl, pinned)
	}
}
