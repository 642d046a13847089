package dag

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
)

func TestImportPathTree(t *testing.T) {
	dir := t.TempDir()
	root := writeTree(t, dir)
	if err := os.WriteFile(filepath.Join(root, ".hidden"), []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/z.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	s := NewMemStore()
	var entries []string
	var progress atomic.Uint64
	opts := ImportOptions{Progress: func(n uint64) { progress.Store(n) }}
	rc, err := ImportPath(t.Context(), root, s, opts, func(c cid.Cid, rel string, _ uint64) {
		entries = append(entries, rel)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tree/.hidden", "tree/a.txt", "tree/b.bin", "tree/empty.txt", "tree/link",
		"tree/sub/big.bin", "tree/sub/deeper/d.txt", "tree/sub/deeper", "tree/sub/z.txt", "tree/sub", "tree"}
	if !slices.Equal(entries, want) {
		t.Errorf("onEntry paths\n%q, want\n%q", entries, want)
	}
	if got, want := progress.Load(), uint64(6+300000+5+2500000+5+7); got != want {
		t.Errorf("progress = %d, want %d", got, want)
	}

	ents, err := ReadDir(t.Context(), s, rc)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name+":"+e.Type.String())
	}
	wantNames := []string{".hidden:file", "a.txt:file", "b.bin:file", "empty.txt:file", "link:symlink", "sub:directory"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("ReadDir = %q, want %q", names, wantNames)
	}
	if ents[2].Size != 300000 || ents[4].Size != uint64(len("sub/z.txt")) {
		t.Errorf("sizes: b.bin %d, link %d", ents[2].Size, ents[4].Size)
	}
	if _, err := ReadDir(t.Context(), s, ents[1].Cid); !errors.Is(err, ErrNotDir) {
		t.Errorf("ReadDir(file) = %v, want ErrNotDir", err)
	}
	if _, err := NewFileReader(t.Context(), s, rc); !errors.Is(err, ErrNotFile) {
		t.Errorf("NewFileReader(dir) = %v, want ErrNotFile", err)
	}

	// Walk visits every block the import stored, each once.
	var visited []cid.Cid
	err = Walk(t.Context(), s, rc, WalkOptions{CheckLeaves: true}, func(c cid.Cid) error {
		visited = append(visited, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(visited) != s.Len() {
		t.Errorf("Walk visited %d CIDs, store holds %d blocks", len(visited), s.Len())
	}
	// SkipNode prunes: skipping "sub" leaves out its 6 descendants
	// (z.txt, big.bin's root and 3 leaves, deeper, d.txt minus shared ones).
	subCid := ents[5].Cid
	var pruned int
	err = Walk(t.Context(), s, rc, WalkOptions{}, func(c cid.Cid) error {
		pruned++
		if c == subCid {
			return SkipNode
		}
		return nil
	})
	if err != nil || pruned >= len(visited) {
		t.Errorf("Walk with SkipNode: %d visits, err %v", pruned, err)
	}

	// WriteTo materialises the tree; it compares equal to the original.
	out := filepath.Join(dir, "out")
	var written uint64
	if err := WriteTo(t.Context(), s, rc, out, WriteOptions{Progress: func(n uint64) { written = n }}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, root, out)
	if written != progress.Load() {
		t.Errorf("WriteTo progress %d, want %d", written, progress.Load())
	}
	if err := WriteTo(t.Context(), s, rc, out, WriteOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteTo over an existing directory: %v, want ErrExist", err)
	}
	// A single file replaces its target atomically.
	fout := filepath.Join(dir, "single.bin")
	os.WriteFile(fout, []byte("old"), 0o644)
	if err := WriteTo(t.Context(), s, ents[2].Cid, fout, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(fout); !bytes.Equal(got, corpusBytes(t, "tree-b", 300000)) {
		t.Error("single file content differs")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*share-tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// A missing block fails the write and leaves nothing behind.
	s.Delete(nthLink(t, s, rc, 1))
	bad := filepath.Join(dir, "bad")
	if err := WriteTo(t.Context(), s, rc, bad, WriteOptions{}); !errs.Is(errs.NotFound, err) {
		t.Errorf("WriteTo with a missing block: %v", err)
	}
	if _, err := os.Lstat(bad); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed WriteTo left %s", bad)
	}
	left, _ = filepath.Glob(filepath.Join(dir, ".*share-tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		q := filepath.Join(b, rel)
		fi, err := os.Lstat(q)
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			ta, _ := os.Readlink(p)
			tb, err := os.Readlink(q)
			if err != nil || ta != tb {
				t.Errorf("%s: symlink %q vs %q (%v)", rel, ta, tb, err)
			}
		case d.IsDir():
			if !fi.IsDir() {
				t.Errorf("%s: not a directory", rel)
			}
		default:
			da, _ := os.ReadFile(p)
			db, err := os.ReadFile(q)
			if err != nil || !bytes.Equal(da, db) {
				t.Errorf("%s: content differs (%v)", rel, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnsafeNames(t *testing.T) {
	s := NewMemStore()
	leaf := Sum(Raw, []byte("x"))
	s.Put(t.Context(), leaf, []byte("x"))
	for _, name := range []string{"", ".", "..", "a/b", "../x", "a\x00b"} {
		blk := (&PBNode{Links: []PBLink{{Hash: leaf, Name: name, Tsize: 1}}, Data: (&UnixFS{Type: TypeDirectory}).Marshal()}).Marshal()
		c := Sum(DagPB, blk)
		s.Put(t.Context(), c, blk)
		if _, err := ReadDir(t.Context(), s, c); !errors.Is(err, ErrInvalidNode) {
			t.Errorf("ReadDir with entry %q: %v", name, err)
		}
		out := filepath.Join(t.TempDir(), "out")
		if err := WriteTo(t.Context(), s, c, out, WriteOptions{}); !errors.Is(err, ErrInvalidNode) {
			t.Errorf("WriteTo with entry %q: %v", name, err)
		}
	}
}

// endless is an endless stream of cheap bytes.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

// cancelAfter cancels its context once n blocks are stored.
type cancelAfter struct {
	n      atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Put(ctx context.Context, _ cid.Cid, _ []byte) error {
	if c.n.Add(-1) == 0 {
		c.cancel()
	}
	return ctx.Err()
}

func TestImportCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	p := &cancelAfter{cancel: cancel}
	p.n.Store(20)
	_, _, err := ImportFile(ctx, endless{}, p, ImportOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// A Put error stops the import too and is returned as it is.
	boom := errors.New("disk full")
	_, _, err = ImportFile(t.Context(), io.LimitReader(endless{}, 50<<20), putFunc(func() error { return boom }), ImportOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	// So does a read error.
	_, _, err = ImportFile(t.Context(), io.MultiReader(io.LimitReader(endless{}, 5<<20), errReader{boom}), nullStore{}, ImportOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	waitGoroutines(t, before)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type putFunc func() error

func (f putFunc) Put(context.Context, cid.Cid, []byte) error { return f() }

// slowGetter delays every Get until its context ends or release closes.
type slowGetter struct {
	share.Getter
	release chan struct{}
	gets    atomic.Int64
}

func (g *slowGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	if g.gets.Add(1) > 1 { // let the root through
		select {
		case <-g.release:
		case <-ctx.Done():
			return share.Block{}, ctx.Err()
		}
	}
	return g.Getter.Get(ctx, c)
}

func TestReadCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	s := NewMemStore()
	root := importBytes(t, s, randBytes(3, 100*1024), 1024)
	ctx, cancel := context.WithCancel(t.Context())
	g := &slowGetter{Getter: s, release: make(chan struct{})}
	r, err := NewFileReader(ctx, g, root)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := r.WriteTo(io.Discard)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for g.gets.Load() < readAhead && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := g.gets.Load(); n > readAhead+3 {
		t.Errorf("%d Gets in flight, read-ahead is %d", n-1, readAhead)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("WriteTo err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WriteTo did not return after cancel")
	}
	waitGoroutines(t, before)
}

func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left over, was %d:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// heapWatcher stores nothing and records the peak live heap seen at Puts.
type heapWatcher struct {
	puts int
	peak uint64
}

func (h *heapWatcher) Put(context.Context, cid.Cid, []byte) error {
	if h.puts++; h.puts%32 == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapInuse)
	}
	return nil
}

// TestImportMemory checks that an import holds a bounded number of chunks,
// whatever the file size.
func TestImportMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 512 MiB")
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapWatcher{}
	if _, _, err := ImportFile(t.Context(), io.LimitReader(endless{}, 512<<20), h, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if grew := int64(h.peak) - int64(ms.HeapInuse); grew > 48<<20 {
		t.Errorf("heap grew by %d MiB during the import", grew>>20)
	}
}

// TestWriteToMissingDir: writing into a directory that does not exist
// fails naming the path asked for, not the temporary name (nothing is
// left under it), with the kind of a missing file.
func TestWriteToMissingDir(t *testing.T) {
	dir := t.TempDir()
	s := NewMemStore()
	rc, err := ImportPath(t.Context(), writeTree(t, dir), s, ImportOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := ReadDir(t.Context(), s, rc)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "missing", "out")
	for _, c := range []cid.Cid{rc, ents[0].Cid} {
		err := WriteTo(t.Context(), s, c, out, WriteOptions{})
		if !errs.Is(errs.NotFound, err) || !strings.Contains(err.Error(), out+":") || strings.Contains(err.Error(), "share-tmp") {
			t.Errorf("WriteTo %s into a missing directory: %v; want NotFound naming %s", c, err, out)
		}
	}
}
