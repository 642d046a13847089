package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/internal/damage"
	"github.com/share-p2p/share/repo"
)

// TestRepoVerifyDamaged flips one bit inside a leaf's bytes in an sstable
// of a repository: repo verify names the block and the pin it breaks, in
// lines and in JSON, and exits 1; cat fails with one line naming the
// block, after writing the bytes before it and none after. No stack
// trace, no Pebble log line. Alone and through a daemon.
func TestRepoVerifyDamaged(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	const chunk, badLeaf = 1 << 20, 3
	data := randBytes(t, 6*chunk)
	writeFile(t, filepath.Join(work, "f"), data)
	root := strings.TrimSpace(ok(t, rp, "add", "-Q", filepath.Join(work, "f")))
	checkIntactJSON(t, rp)
	if _, err := damage.Flip(filepath.Join(rp, repo.DBDir), data[badLeaf*chunk+1000:badLeaf*chunk+1064]); err != nil {
		t.Fatal(err)
	}
	bad := dag.Sum(cid.Raw, data[badLeaf*chunk:(badLeaf+1)*chunk]).String()
	checkDamaged(t, rp, root, bad, data[:badLeaf*chunk])
	startDaemon(t, rp)
	checkDamaged(t, rp, root, bad, data[:badLeaf*chunk])
}

// checkIntactJSON checks that repo verify --json of an intact repository
// says [] and {}, never null.
func checkIntactJSON(t *testing.T, rp string) {
	t.Helper()
	out := ok(t, rp, "repo", "verify", "--json")
	for _, want := range []string{`"Corrupt":[]`, `"Breaks":{}`, `"BadPins":[]`} {
		if !strings.Contains(out, want) {
			t.Fatalf("repo verify --json of an intact repository: %s, want %s", out, want)
		}
	}
}

func checkDamaged(t *testing.T, rp, root, bad string, before []byte) {
	t.Helper()
	noTrace := func(what, stderr string) {
		t.Helper()
		for _, s := range []string{"level=ERROR", "goroutine ", "stack trace", "pebble"} {
			if strings.Contains(stderr, s) {
				t.Fatalf("%s: %q in stderr: %s", what, s, stderr)
			}
		}
	}

	r := run(t, rp, nil, "repo", "verify")
	noTrace("repo verify", r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	named := slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "share: ") && strings.Contains(l, bad) && strings.Contains(l, "breaks pin "+root)
	})
	if r.code != 1 || !named {
		t.Fatalf("repo verify: exit %d, stderr %q; want exit 1 and a line naming %s and the pin %s", r.code, r.stderr, bad, root)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "share: ") {
			t.Fatalf("repo verify: stderr line %q is not a 'share: ' line", l)
		}
	}

	r = run(t, rp, nil, "repo", "verify", "--json")
	noTrace("repo verify --json", r.stderr)
	var res struct {
		Corrupt []string
		Breaks  map[string][]string
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 1 {
		t.Fatalf("repo verify --json: exit %d, %v, stdout %q", r.code, err, r.stdout)
	}
	if !slices.Equal(res.Corrupt, []string{bad}) || !slices.Equal(res.Breaks[bad], []string{root}) {
		t.Fatalf("repo verify --json: %s, want %s corrupt, breaking %s", r.stdout, bad, root)
	}

	r = run(t, rp, nil, "cat", root)
	noTrace("cat", r.stderr)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "share: ") || !strings.Contains(r.stderr, bad) {
		t.Fatalf("cat of a damaged file: exit %d, stderr %q; want one line naming %s", r.code, r.stderr, bad)
	}
	if !bytes.Equal([]byte(r.stdout), before) {
		t.Fatalf("cat of a damaged file wrote %d bytes, want the %d before the damaged block", len(r.stdout), len(before))
	}
}
