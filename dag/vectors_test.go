package dag

import (
	"bufio"
	"context"
	"crypto/sha3"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/chunker"
)

// corpusReader streams the bytes of testdata/vectors' corpus file seeded
// with seed: SHAKE-256(seed+":0", 65536 bytes), SHAKE-256(seed+":1", ...)
// and so on, cut to size. It never holds more than one 64 KiB block.
type corpusReader struct {
	seed  string
	left  int64
	index int
	block []byte
}

func newCorpusReader(seed string, size int64) *corpusReader {
	return &corpusReader{seed: seed, left: size}
}

func (r *corpusReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if len(r.block) == 0 {
		r.block = sha3.SumSHAKE256([]byte(r.seed+":"+strconv.Itoa(r.index)), 65536)
		r.index++
	}
	n := min(len(p), len(r.block))
	if int64(n) > r.left {
		n = int(r.left)
	}
	copy(p, r.block[:n])
	r.block = r.block[n:]
	r.left -= int64(n)
	return n, nil
}

func corpusBytes(t testing.TB, seed string, size int64) []byte {
	t.Helper()
	b, err := io.ReadAll(newCorpusReader(seed, size))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeTree writes the corpus directory "tree" under dir, as
// make-corpus.sh does.
func writeTree(t testing.TB, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "tree")
	files := map[string][]byte{
		"a.txt":            []byte("alpha\n"),
		"b.bin":            corpusBytes(t, "tree-b", 300000),
		"empty.txt":        {},
		"sub/z.txt":        []byte("zeta\n"),
		"sub/big.bin":      corpusBytes(t, "tree-sub-big", 2500000),
		"sub/deeper/d.txt": []byte("deep\n"),
	}
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// nullStore stores nothing; it lets the vector test import 200 MB without
// holding it.
type nullStore struct{}

func (nullStore) Put(context.Context, cid.Cid, []byte) error { return nil }

// TestVectors reproduces every row of testdata/vectors/cids.tsv, the CIDs
// an independent implementation (and kubo) computes for the corpus.
func TestVectors(t *testing.T) {
	f, err := os.Open("../testdata/vectors/cids.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	rows := 0
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 4 {
			t.Fatalf("bad row %q", sc.Text())
		}
		name, sizeStr, spec, want := fields[0], fields[1], fields[2], fields[3]
		rows++
		t.Run(name+"/"+spec, func(t *testing.T) {
			sp, err := chunker.Parse(spec)
			if err != nil {
				t.Fatal(err)
			}
			opts := ImportOptions{Chunker: sp}
			ctx := t.Context()
			var got string
			switch {
			case name == "tree":
				root := writeTree(t, t.TempDir())
				c, err := ImportPath(ctx, root, NewMemStore(), opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				got = c.String()
			default:
				size, err := strconv.ParseInt(sizeStr, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				var r io.Reader = newCorpusReader(strings.TrimSuffix(name, ".bin"), size)
				if name == "hello.txt" {
					r = strings.NewReader("hello world\n")
				}
				if size > 64<<20 && testing.Short() {
					t.Skip("large input skipped in -short mode")
				}
				c, n, err := ImportFile(ctx, r, nullStore{}, opts)
				if err != nil {
					t.Fatal(err)
				}
				if n != uint64(size) {
					t.Errorf("size = %d, want %d", n, size)
				}
				got = c.String()
			}
			if got != want {
				t.Errorf("CID = %s, want %s", got, want)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows < 13 {
		t.Fatalf("read %d rows, want at least 13", rows)
	}
}
