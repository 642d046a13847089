package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/pin"
)

// TestResolveFromNetwork: a path into a directory that is not here
// resolves through the directories fetched on the way, plain and
// HAMT-sharded, and the content it names is then fetched alone: the
// getter does not take the root's whole DAG (a large file beside the path
// stays at the provider, but for what the directories' fetch had asked
// for ahead when it ended).
func TestResolveFromNetwork(t *testing.T) {
	mn := newMemNet(t)
	provider, getter := mn.node(), mn.node()
	src := filepath.Join(t.TempDir(), "top")
	big := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{9}).Read(big)
	files := map[string][]byte{"sub/a.txt": []byte("a\n"), "big.bin": big}
	for i := range 6000 {
		files[fmt.Sprintf("shard/f%05d", i)] = []byte(fmt.Sprint(i))
	}
	writeTree(t, src, files)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root, err := provider.Add(ctx, src, nil, AddOptions{Recursive: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	connect(t, getter, provider)

	for _, tc := range []struct {
		path string
		want []byte
	}{
		{root.String() + "/sub/a.txt", []byte("a\n")},
		{"/ipfs/" + root.String() + "/shard/f04321", []byte("4321")},
	} {
		p, err := dag.ParsePath(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := getter.Resolve(ctx, p, FetchOptions{})
		if err != nil {
			t.Fatalf("Resolve(%s): %v", tc.path, err)
		}
		var out bytes.Buffer
		if _, err := getter.Cat(ctx, c, &out, FetchOptions{}); err != nil || !bytes.Equal(out.Bytes(), tc.want) {
			t.Fatalf("Cat(%s) = %q, %v; want %q", tc.path, out.Bytes(), err, tc.want)
		}
	}
	st, err := getter.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the getter holds %d blocks, %d bytes, of a root DAG of %d MiB", st.Blocks, st.Bytes, len(big)>>20)
	if st.Bytes > int64(len(big))/2 {
		t.Errorf("resolving two paths fetched %d bytes: most of the root's DAG", st.Bytes)
	}

	// A path resolves to the CID that pin add pins.
	p, _ := dag.ParsePath(root.String() + "/sub")
	sub, err := getter.Resolve(ctx, p, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := getter.PinAdd(ctx, sub, pin.Recursive, "", FetchOptions{}); err != nil {
		t.Fatal(err)
	}

	// A name that the provider's directory lacks is not found, naming it.
	p, _ = dag.ParsePath(root.String() + "/sub/nope")
	var nl *dag.NoLinkError
	if _, err := getter.Resolve(ctx, p, FetchOptions{}); errs.KindOf(err) != errs.NotFound || !errors.As(err, &nl) {
		t.Fatalf("Resolve of a missing name: %v", err)
	}
	// A bare CID resolves to itself without a fetch, even offline.
	absent := dag.Sum(dag.Raw, []byte("absent"))
	if c, err := getter.Resolve(ctx, dag.PathOf(absent), FetchOptions{}); err != nil || c != absent {
		t.Fatalf("Resolve of a bare CID: %v %v", c, err)
	}
}
