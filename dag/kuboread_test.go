package dag

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// kuboFormats are the Formats of kubo's add settings (kubo-cids.tsv's
// setting column), share's default among them.
var kuboFormats = map[string]Format{
	"kubo-default": KuboDefault,
	"v0-raw":       {CIDv0: true, Hash: mh.SHA2_256},
	"v1-sha256":    {Hash: mh.SHA2_256},
	"v1-sha256-pb": {Hash: mh.SHA2_256, DagPBLeaves: true},
	"v1-blake3":    {},
	"v1-blake3-pb": {DagPBLeaves: true},
}

// TestKuboFormatsReadBack imports files in every kubo format (small chunks,
// so that trees are several levels deep) and reads them back byte for byte
// through FileReader's Read, ReadAt, Seek and WriteTo.
func TestKuboFormatsReadBack(t *testing.T) {
	const chunk = 1000
	sizes := []int{0, 1, chunk - 1, chunk, chunk + 1, MaxLinks * chunk, MaxLinks*chunk + 1, 3*MaxLinks*chunk + 17}
	for name, f := range kuboFormats {
		t.Run(name, func(t *testing.T) {
			for _, size := range sizes {
				data := randBytes(uint64(size)+7, size)
				s := NewMemStore()
				root, n, err := ImportFile(t.Context(), bytes.NewReader(data), s, ImportOptions{Chunker: spec(t, chunk), Format: f})
				if err != nil || n != uint64(size) {
					t.Fatalf("import %d bytes: %d, %v", size, n, err)
				}
				checkFormat(t, s, root, f)
				checkRoundTrip(t, s, root, data, chunk)
			}
		})
	}
}

// checkFormat walks the DAG root and checks that every block has the CID
// version, hash and codec f says.
func checkFormat(t *testing.T, s *MemStore, root cid.Cid, f Format) {
	t.Helper()
	blocks := 0
	err := Walk(t.Context(), s, root, WalkOptions{VerifyLeaves: true}, func(c cid.Cid) error {
		blocks++
		p := c.Prefix()
		wantHash := uint64(mh.BLAKE3)
		if f.Hash == mh.SHA2_256 {
			wantHash = mh.SHA2_256
		}
		wantVersion := uint64(1)
		if f.CIDv0 && p.Codec == DagPB {
			wantVersion = 0
		}
		if p.MhType != wantHash || p.Version != wantVersion || p.Codec == Raw && f.DagPBLeaves {
			t.Fatalf("block %s: prefix %+v in format %s", c, p, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored := s.Len(); blocks != stored {
		t.Errorf("walk saw %d blocks, the store holds %d", blocks, stored)
	}
}

// TestKuboFormatsTree imports the corpus tree and a sharded directory in
// every kubo format and reads them back: ReadDir (ls), Lookup, Walk and
// WriteTo.
func TestKuboFormatsTree(t *testing.T) {
	dir := t.TempDir()
	tree := writeTree(t, dir)
	flat := writeFlat(t, dir, "hamt-5350", 5350)
	for name, f := range kuboFormats {
		t.Run(name, func(t *testing.T) {
			s := NewMemStore()
			opts := ImportOptions{Chunker: spec(t, KuboChunkSize), Format: f}
			rc, err := ImportPath(t.Context(), tree, s, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			ents, err := ReadDir(t.Context(), s, rc)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range ents {
				got = append(got, e.Name+":"+e.Type.String())
				if e.Type == TypeFile && e.Name == "b.bin" && e.Size != 300000 {
					t.Errorf("b.bin: size %d", e.Size)
				}
			}
			want := []string{"a.txt:file", "b.bin:file", "empty.txt:file", "sub:directory"}
			if !slices.Equal(got, want) {
				t.Errorf("ReadDir = %q, want %q", got, want)
			}
			sub, err := Lookup(t.Context(), s, rc, "sub")
			if err != nil {
				t.Fatal(err)
			}
			big, err := Lookup(t.Context(), s, sub.Hash, "big.bin")
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, s, big.Hash, corpusBytes(t, "tree-sub-big", 2500000), KuboChunkSize)
			checkFormat(t, s, rc, f)
			out := filepath.Join(t.TempDir(), "out")
			if err := WriteTo(t.Context(), s, rc, out, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			compareTrees(t, tree, out)

			hc, err := ImportPath(t.Context(), flat, s, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			if typ := nodeType(t, s, hc); typ != TypeHAMTShard {
				t.Fatalf("hamt-5350 is a %s", typ)
			}
			l, err := Lookup(t.Context(), s, hc, "file-004321.txt")
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, s, l.Hash); string(got) != "4321\n" {
				t.Errorf("file-004321.txt = %q", got)
			}
			if ents, err := ReadDir(t.Context(), s, hc); err != nil || len(ents) != 5350 {
				t.Fatalf("ReadDir: %d entries, %v", len(ents), err)
			}
		})
	}
}
