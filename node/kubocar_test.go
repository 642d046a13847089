package node

import (
	"bytes"
	"crypto/sha3"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/pin"
)

// kuboTreeFiles are the files of the tree in testdata/vectors/kubo-v0.car
// and kubo-v1.car (README.md there says how kubo made them).
func kuboTreeFiles() map[string][]byte {
	return map[string][]byte{
		"hello.txt":    []byte("hello world\n"),
		"empty.txt":    {},
		"small.bin":    corpus("small", 1000),
		"sub/deep.bin": corpus("kubo-deep", 50000),
	}
}

// corpus is the test-vector corpus' file seeded with seed:
// SHAKE-256(seed+":0", 65536 bytes), SHAKE-256(seed+":1", ...), cut to size.
func corpus(seed string, size int) []byte {
	var b []byte
	for i := 0; len(b) < size; i++ {
		b = append(b, sha3.SumSHAKE256([]byte(seed+":"+strconv.Itoa(i)), 65536)...)
	}
	return b[:size]
}

// TestKuboCAR imports CARs that kubo exported (its default CIDv0 with
// dag-pb leaves, and CIDv1 with raw leaves, both sha2-256, 256-byte chunks
// so that deep.bin is two levels deep) and reads every file back with Ls
// and Cat; then adds the same tree with the same settings and gets kubo's
// root CID.
func TestKuboCAR(t *testing.T) {
	tests := []struct {
		car, root string
		format    dag.FormatOptions
	}{
		{"kubo-v0.car", "QmfQTE1y7EdWAvFSEFSZyFZnbBHBnhw4qyZMctvWz9hMnq", dag.FormatOptions{CIDVersion: new(int)}},
		{"kubo-v1.car", "bafybeibbq6tl35gie4fq642tuqsuc7skn2whlk4udab2mmmjmrpmqnsywe", dag.FormatOptions{Hash: "sha2-256"}},
	}
	for _, tt := range tests {
		t.Run(tt.car, func(t *testing.T) {
			n := openTest(t)
			f, err := os.Open(filepath.Join("..", "testdata", "vectors", tt.car))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			roots, err := n.Import(t.Context(), f, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(roots) != 1 || roots[0].String() != tt.root {
				t.Fatalf("roots %v, want %s", roots, tt.root)
			}
			for name, want := range kuboTreeFiles() {
				c := lookupPath(t, n, roots[0], name)
				var got bytes.Buffer
				if _, err := n.Cat(t.Context(), c, &got, FetchOptions{}); err != nil {
					t.Fatalf("cat %s: %v", name, err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Errorf("cat %s: %d bytes differ from the %d expected", name, got.Len(), len(want))
				}
			}
			if err := pin.Complete(t.Context(), n.local(), roots[0], pin.Recursive); err != nil {
				t.Fatal(err)
			}

			dir := filepath.Join(t.TempDir(), "kubotree")
			for name, data := range kuboTreeFiles() {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c, err := n.Add(t.Context(), dir, nil, AddOptions{Recursive: true, Chunker: "size-256", Format: tt.format}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != tt.root {
				t.Errorf("add: root %s, kubo's %s", c, tt.root)
			}
		})
	}
}

// lookupPath follows a slash path from the directory root with Ls.
func lookupPath(t *testing.T, n *Node, root cid.Cid, path string) cid.Cid {
	t.Helper()
	c := root
	for dir, rest := "", path; rest != ""; {
		name, after, _ := strings.Cut(rest, "/")
		rest = after
		ents, err := n.Ls(t.Context(), c, FetchOptions{})
		if err != nil {
			t.Fatalf("ls %s: %v", dir, err)
		}
		found := false
		for _, e := range ents {
			if e.Name == name {
				c, found = e.Cid, true
			}
		}
		if !found {
			t.Fatalf("ls %s: no %s", dir, name)
		}
		dir += "/" + name
	}
	return c
}

// TestAddCIDv0Chunker checks that CIDv0 without a chunker is kubo's
// default (256 KiB chunks) and that an explicit chunker still wins.
func TestAddCIDv0Chunker(t *testing.T) {
	n := openTest(t)
	data := corpus("c256k+1", 262145)
	add := func(opts AddOptions) string {
		c, err := n.Add(t.Context(), "-", bytes.NewReader(data), opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.String()
	}
	// kubo-cids.tsv: c256k+1.bin, kubo-default, size-262144 and size-1048576.
	if got, want := add(AddOptions{Format: dag.FormatOptions{CIDVersion: new(int)}}), "QmPswvVoZLm9tM6kBVXBANWLWKQkAtJAejtW5KamBxCpiA"; got != want {
		t.Errorf("--cid-version 0: %s, want %s", got, want)
	}
	if got, want := add(AddOptions{Chunker: "size-1048576", Format: dag.FormatOptions{CIDVersion: new(int)}}), "QmRbVSn5Dc2vM4n8nC2inrCVRHzBdguLjySMhn1hGGCTXt"; got != want {
		t.Errorf("--cid-version 0 --chunker size-1048576: %s, want %s", got, want)
	}
	if _, err := n.Add(t.Context(), "-", bytes.NewReader(data), AddOptions{Format: dag.FormatOptions{CIDVersion: new(int), Hash: "blake3"}}, nil); err == nil {
		t.Error("--cid-version 0 --hash blake3: no error")
	}
}

// TestImportConfig: the config's Import section sets add's format where
// the flags do not, as kubo's does; a flag still wins.
func TestImportConfig(t *testing.T) {
	n := openTest(t)
	cfg, err := n.Repo.Config().Set("Import.CidVersion", "0")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Repo.SaveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	data := corpus("c256k+1", 262145)
	add := func(opts AddOptions) string {
		c, err := n.Add(t.Context(), "-", bytes.NewReader(data), opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.String()
	}
	// kubo-cids.tsv: c256k+1.bin, kubo-default, size-262144 and size-1048576.
	if got, want := add(AddOptions{}), "QmPswvVoZLm9tM6kBVXBANWLWKQkAtJAejtW5KamBxCpiA"; got != want {
		t.Errorf("Import.CidVersion 0: %s, want %s", got, want)
	}
	if cfg, err = cfg.Set("Import.UnixFSChunker", "size-1048576"); err != nil {
		t.Fatal(err)
	}
	if err := n.Repo.SaveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := add(AddOptions{}), "QmRbVSn5Dc2vM4n8nC2inrCVRHzBdguLjySMhn1hGGCTXt"; got != want {
		t.Errorf("Import.CidVersion 0, Import.UnixFSChunker size-1048576: %s, want %s", got, want)
	}
	one := 1
	if got := add(AddOptions{Chunker: "size-262144", Format: dag.FormatOptions{CIDVersion: &one}}); !strings.HasPrefix(got, "bafy") {
		t.Errorf("--cid-version 1 over Import.CidVersion 0: %s, want a CIDv1", got)
	}
	if _, err := cfg.Set("Import.HashFunction", "blake3"); err == nil {
		t.Error("Import.CidVersion 0 with Import.HashFunction blake3 was accepted")
	}
	if _, err := cfg.Set("Import.UnixFSChunker", "rabin"); err == nil {
		t.Error("Import.UnixFSChunker rabin was accepted")
	}
}
