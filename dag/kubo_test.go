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
	"time"

	"golang.org/x/sys/unix"

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
		case "--preserve-mode":
			o.PreserveMode = true
		case "--preserve-mtime":
			o.PreserveMtime = true
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
	top, rest, _ := strings.Cut(name, "/")
	if rest != "" {
		return filepath.Join(kuboDir(t, top), filepath.FromSlash(rest))
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	switch {
	case name == "tree":
		return writeTree(t, dir)
	case name == "meta":
		return writeMetaTree(t, dir)
	case strings.HasPrefix(name, "mflat-"), strings.HasPrefix(name, "mhamt-"):
		n, err := strconv.Atoi(name[6:])
		if err != nil {
			t.Fatalf("bad directory %q", name)
		}
		return writeMetaFlat(t, dir, name, n)
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
	if rows < 290 {
		t.Fatalf("read %d rows, want at least 290", rows)
	}
}

// metaEntry is one file, directory or symlink of kubo-meta-cids.sh's tree
// meta, with its mode and modification time (UTC).
type metaEntry struct {
	name  string
	data  string // a file's content; a symlink's target
	mode  os.FileMode
	mtime string
	link  bool
	isDir bool
}

// metaTree is the tree meta of kubo-meta-cids.sh, directories after their
// contents (their times are set last).
var metaTree = []metaEntry{
	{name: "run.sh", data: "#!/bin/sh\necho hello\n", mode: 0o755, mtime: "2020-01-02T03:04:05.123456789Z"},
	{name: "data.txt", data: seq(60000), mode: 0o644, mtime: "2021-06-07T08:09:10Z"},
	{name: "empty", mode: 0o600, mtime: "1999-12-31T23:59:59.5Z"},
	{name: "suid", data: "s\n", mode: 0o755 | os.ModeSetuid, mtime: "2001-01-01T00:00:00Z"},
	{name: "old.txt", data: "old\n", mode: 0o444, mtime: "1960-01-01T00:00:00.25Z"},
	{name: "sub/x.txt", data: "x\n", mode: 0o640, mtime: "2011-01-01T00:00:00Z"},
	{name: "tmp/.keep", mode: 0o644, mtime: "2012-01-01T00:00:00Z"},
	{name: "link", data: "run.sh", link: true, mtime: "2019-01-01T00:00:00Z"},
	{name: "sub", isDir: true, mode: 0o750, mtime: "2010-01-01T00:00:00.5Z"},
	{name: "tmp", isDir: true, mode: 0o777 | os.ModeSticky, mtime: "2012-01-01T00:00:00Z"},
	{name: "", isDir: true, mode: 0o755, mtime: "2022-02-02T02:02:02Z"},
}

// seq is the output of seq 1 n.
func seq(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// writeMetaTree writes the tree meta under dir.
func writeMetaTree(t testing.TB, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "meta")
	for _, e := range metaTree {
		p := filepath.Join(root, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case e.link:
			err = os.Symlink(e.data, p)
		case e.isDir:
			err = os.Chmod(p, e.mode)
		default:
			if err = os.WriteFile(p, []byte(e.data), 0o600); err == nil {
				err = os.Chmod(p, e.mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		setMtime(t, p, e.mtime)
	}
	return root
}

// setMtime sets the modification time of p (not following a symlink) to
// the RFC 3339 time mtime.
func setMtime(t testing.TB, p, mtime string) {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, mtime)
	if err != nil {
		t.Fatal(err)
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(tm.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// writeMetaFlat writes writeFlat's directory with every file 0644 and
// every time 2000-01-01, as kubo-meta-cids.sh does.
func writeMetaFlat(t testing.TB, dir, name string, n int) string {
	t.Helper()
	root := writeFlat(t, dir, name, n)
	const y2k = "2000-01-01T00:00:00Z"
	for i := range n {
		p := filepath.Join(root, fmt.Sprintf("file-%06d.txt", i))
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		setMtime(t, p, y2k)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	setMtime(t, root, y2k)
	return root
}
