package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/internal/damage"
	"github.com/share-p2p/share/repo"
)

// TestRepoVerifyDamagedSSTable flips one bit inside a leaf's bytes in an
// sstable of a closed repository: repo verify lists that block and the
// pins whose DAG holds it (and only those), and cat fails at the damaged
// block with the bytes before it written, none after.
func TestRepoVerifyDamagedSSTable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 1 << 20
	data := make([]byte, 6*chunk)
	rand.Read(data)
	add := func(b []byte, name string) cid.Cid {
		c, err := n.Add(ctx, "-", bytes.NewReader(b), AddOptions{PinName: name}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := add(data, "a")
	longer := add(append(bytes.Clone(data), make([]byte, chunk)...), "longer") // shares a's leaves
	other := make([]byte, 5*chunk)
	rand.Read(other)
	add(other, "other")
	n.Close()
	const badLeaf = 3
	if _, err := damage.Flip(filepath.Join(dir, repo.DBDir), data[badLeaf*chunk+1000:badLeaf*chunk+1064]); err != nil {
		t.Fatal(err)
	}
	n, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	bad := dag.Sum(cid.Raw, data[badLeaf*chunk:(badLeaf+1)*chunk])

	res, err := n.RepoVerify(ctx, nil)
	if err != nil {
		t.Fatalf("repo verify: %v", err)
	}
	if len(res.Corrupt) != 1 || res.Corrupt[0] != bad.String() {
		t.Fatalf("repo verify: corrupt %v, want [%s]", res.Corrupt, bad)
	}
	want := []string{a.String(), longer.String()}
	got := slices.Sorted(slices.Values(res.Breaks[bad.String()]))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("repo verify: %s breaks pins %v, want %v", bad, got, want)
	}
	if len(res.BadPins) != 2 || res.Blocks < 12 {
		t.Fatalf("repo verify = %+v, want 2 bad pins of 12 blocks or more", res)
	}

	var out bytes.Buffer
	_, err = n.Cat(ctx, a, &out, FetchOptions{})
	if !errs.Is(errs.Corrupt, err) || !strings.Contains(err.Error(), bad.String()) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("cat of a damaged file: %q (kind %v), want one line of kind corrupt naming %s", err, errs.KindOf(err), bad)
	}
	if out.Len() != badLeaf*chunk || !bytes.Equal(out.Bytes(), data[:out.Len()]) {
		t.Fatalf("cat wrote %d bytes, want the %d before the damaged block", out.Len(), badLeaf*chunk)
	}
}

// TestRepoVerifyIntactLists: an intact repository's result has empty
// lists, not nil ones (--json prints [] and {}, not null).
func TestRepoVerifyIntactLists(t *testing.T) {
	n := openTest(t)
	res, err := n.RepoVerify(context.Background(), nil)
	if err != nil || res.Corrupt == nil || res.BadPins == nil || res.Breaks == nil {
		t.Fatalf("repo verify of an empty repository = %#v, %v; want empty lists", res, err)
	}
}
