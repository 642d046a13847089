package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNames: a name published on one daemon, under a key made with key
// gen, resolves on another and serves /ipns/ paths to cat, ls and get; a
// new version replaces the old; key rm forgets the key.
func TestNames(t *testing.T) {
	a, b, work := t.TempDir(), t.TempDir(), t.TempDir()
	startDaemon(t, a)
	db := startDaemon(t, b)
	ok(t, a, "connect", db.addrs[0])
	name := strings.TrimSpace(ok(t, a, "key", "gen", "site"))
	if !strings.HasPrefix(name, "k51") {
		t.Fatalf("key gen printed %q, want a k51... name", name)
	}
	if ls := ok(t, a, "key", "ls"); !strings.Contains(ls, name+" site") || !strings.HasPrefix(ls, "k51") {
		t.Errorf("key ls:\n%s", ls)
	}
	for i, content := range []string{"version one\n", "version two\n"} {
		site := filepath.Join(work, "site", string(rune('a'+i)))
		writeFile(t, filepath.Join(site, "index.txt"), []byte(content))
		root := strings.TrimSpace(ok(t, a, "add", "-Q", "-r", site))
		if got := strings.TrimSpace(ok(t, a, "name", "publish", "-q", "--key", "site", root)); got != name {
			t.Fatalf("name publish -q printed %q, want %s", got, name)
		}
		if got := strings.TrimSpace(ok(t, b, "name", "resolve", name)); got != "/ipfs/"+root {
			t.Errorf("name resolve = %q, want /ipfs/%s", got, root)
		}
		if got := ok(t, b, "cat", "/ipns/"+name+"/index.txt"); got != content {
			t.Errorf("cat /ipns/NAME/index.txt = %q, want %q", got, content)
		}
		if ls := ok(t, b, "ls", "/ipns/"+name); !strings.Contains(ls, "index.txt") {
			t.Errorf("ls /ipns/NAME:\n%s", ls)
		}
	}
	out := filepath.Join(work, "got")
	ok(t, b, "get", "/ipns/"+name, "-o", out)
	if got, err := os.ReadFile(filepath.Join(out, "index.txt")); err != nil || string(got) != "version two\n" {
		t.Errorf("get /ipns/NAME wrote %q, %v", got, err)
	}
	ok(t, a, "key", "rm", "site")
	fails(t, a, `no key "site"`, "name", "publish", "--key", "site", "bafkqaaa")
	fails(t, b, "invalid IPNS name", "cat", "/ipns/nope/index.txt")
}
