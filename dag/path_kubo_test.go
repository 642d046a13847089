package dag_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/share-p2p/share/car"
	"github.com/share-p2p/share/dag"
)

// TestResolveKuboTree: paths into a tree that kubo made (CIDv0, dag-pb
// leaves, a HAMT-sharded directory, names with spaces and accents)
// resolve to the CIDs kubo's resolve gives, and fail where kubo's fails
// (testdata/kubo-paths.tsv says how they were made).
func TestResolveKuboTree(t *testing.T) {
	ctx := context.Background()
	f, err := os.Open("testdata/kubo-paths.car")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := dag.NewMemStore()
	roots, err := car.Import(ctx, f, s)
	if err != nil || len(roots) != 1 {
		t.Fatalf("import: %v %v", roots, err)
	}
	root := roots[0].String()
	tf, err := os.Open("testdata/kubo-paths.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	n := 0
	for sc := bufio.NewScanner(tf); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		rel, want, _ := strings.Cut(sc.Text(), "\t")
		p, err := dag.ParsePath("/ipfs/" + root + "/" + rel)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", rel, err)
		}
		got, err := dag.Resolve(ctx, s, p)
		var nl *dag.NoLinkError
		switch {
		case want == "missing" && !errors.As(err, &nl):
			t.Errorf("%q: %v, %v; kubo finds no such link", rel, got, err)
		case want != "missing" && (err != nil || got.String() != want):
			t.Errorf("%q: %v, %v; kubo resolves it to %s", rel, got, err, want)
		}
		n++
	}
	if n < 10 {
		t.Fatalf("only %d paths in the table", n)
	}
}
