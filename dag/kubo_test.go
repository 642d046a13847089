package dag

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/share-p2p/share/chunker"
)

// kuboOptions turns the flags of a kubo-cids.tsv row into FormatOptions,
// with kubo's defaults where share's differ: kubo's hash is sha2-256 and,
// with it, its CID version 0.
func kuboOptions(t testing.TB, flags string) FormatOptions {
	t.Helper()
	o := FormatOptions{Hash: "sha2-256"}
	for _, f := range strings.Fields(flags) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "--cid-version":
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("flag %q", f)
			}
			o.CIDVersion = &n
		case "--hash":
			o.Hash = v
		case "--raw-leaves":
			b := v != "false"
			o.RawLeaves = &b
		default:
			t.Fatalf("unknown flag %q", f)
		}
	}
	if o.CIDVersion == nil && o.Hash == "sha2-256" {
		o.CIDVersion = new(int)
	}
	return o
}

// writeFlat writes the directory name of kubo-cids.sh: n files
// file-NNNNNN.txt holding "N\n".
func writeFlat(t testing.TB, dir, name string, n int) string {
	t.Helper()
	root := filepath.Join(dir, name)
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p := filepath.Join(root, fmt.Sprintf("file-%06d.txt", i))
		if err := os.WriteFile(p, []byte(strconv.Itoa(i)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// kuboCorpusDirs writes the directories of kubo-cids.tsv once for all
// rows.
var kuboCorpusDirs = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "share-kubo-vectors-")
	if err != nil {
		return "", err
	}
	return dir, nil
})

func kuboDir(t *testing.T, name string) string {
	t.Helper()
	dir, err := kuboCorpusDirs()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	switch {
	case name == "tree":
		return writeTree(t, dir)
	case strings.HasPrefix(name, "flat-"), strings.HasPrefix(name, "hamt-"):
		n, err := strconv.Atoi(name[5:])
		if err != nil {
			t.Fatalf("bad directory %q", name)
		}
		return writeFlat(t, dir, name, n)
	}
	t.Fatalf("unknown directory %q", name)
	return ""
}

// TestKuboVectors reproduces every row of testdata/vectors/kubo-cids.tsv:
// the CIDs kubo itself computes for the corpus under each of its add
// settings (testdata/vectors/README.md says how the table was made).
func TestKuboVectors(t *testing.T) {
	t.Cleanup(func() {
		if dir, err := kuboCorpusDirs(); err == nil {
			os.RemoveAll(dir)
		}
	})
	f, err := os.Open("../testdata/vectors/kubo-cids.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	rows := 0
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 6 {
			t.Fatalf("bad row %q", sc.Text())
		}
		name, sizeStr, spec, setting, flags, want := fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
		rows++
		t.Run(setting+"/"+spec+"/"+name, func(t *testing.T) {
			format, err := kuboOptions(t, flags).Format()
			if err != nil {
				t.Fatal(err)
			}
			sp, err := chunker.Parse(spec)
			if err != nil {
				t.Fatal(err)
			}
			opts := ImportOptions{Chunker: sp, Format: format}
			if sizeStr == "-" {
				c, err := ImportPath(t.Context(), kuboDir(t, name), NewMemStore(), opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				if c.String() != want {
					t.Errorf("CID = %s, want %s", c, want)
				}
				return
			}
			size, err := strconv.ParseInt(sizeStr, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if size > 64<<20 && testing.Short() {
				t.Skip("large input skipped in -short mode")
			}
			var r io.Reader = newCorpusReader(strings.TrimSuffix(name, ".bin"), size)
			if name == "hello.txt" {
				r = strings.NewReader("hello world\n")
			}
			c, n, err := ImportFile(t.Context(), r, nullStore{}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if n != uint64(size) {
				t.Errorf("size = %d, want %d", n, size)
			}
			if c.String() != want {
				t.Errorf("CID = %s, want %s", c, want)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows < 140 {
		t.Fatalf("read %d rows, want at least 140", rows)
	}
}
