package node

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/share-p2p/share/dag"
)

// folderTest imports versions of a folder into one MemStore and syncs a
// followed folder to them, keeping the state in memory.
type folderTest struct {
	t     *testing.T
	store *dag.MemStore
	dir   string
	st    followState
	saves int
}

func newFolderTest(t *testing.T) *folderTest {
	return &folderTest{t: t, store: dag.NewMemStore(), dir: t.TempDir()}
}

// version imports files as a folder and returns its root and tree.
func (f *folderTest) version(files map[string]string) (string, map[string]pathState) {
	f.t.Helper()
	src := filepath.Join(f.t.TempDir(), "v")
	os.Mkdir(src, 0o755)
	bs := map[string][]byte{}
	for k, v := range files {
		if strings.HasSuffix(k, "/") {
			os.MkdirAll(filepath.Join(src, k), 0o755)
			continue
		}
		bs[k] = []byte(v)
	}
	writeTree(f.t, src, bs)
	root, err := dag.ImportPath(f.t.Context(), src, f.store, dag.ImportOptions{}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	tree, err := listTree(f.t.Context(), f.store, root)
	if err != nil {
		f.t.Fatal(err)
	}
	return root.String(), tree
}

// sync brings the folder to files; afterWrite may cut it short.
func (f *folderTest) sync(files map[string]string, afterWrite func(string) error) (syncResult, error) {
	f.t.Helper()
	root, tree := f.version(files)
	s := &folderSync{g: f.store, dir: f.dir, st: &f.st, afterWrite: afterWrite,
		save: func(*followState) error { f.saves++; return nil }}
	err := s.syncFolder(f.t.Context(), root, tree)
	return s.res, err
}

// disk returns the folder's files (and, with a trailing slash, folders).
func (f *folderTest) disk() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == f.dir {
			return err
		}
		rel, _ := filepath.Rel(f.dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	return out
}

// withDirs adds the folders that files imply.
func withDirs(files map[string]string) map[string]string {
	out := maps.Clone(files)
	for k := range files {
		for d := filepath.Dir(k); d != "."; d = filepath.Dir(d) {
			out[filepath.ToSlash(d)+"/"] = ""
		}
	}
	return out
}

func (f *folderTest) wantDisk(want map[string]string) {
	f.t.Helper()
	if got := f.disk(); !maps.Equal(got, withDirs(want)) {
		f.t.Fatalf("folder holds %v, want %v", got, withDirs(want))
	}
}

func TestFollowFolderUpdate(t *testing.T) {
	f := newFolderTest(t)
	v1 := map[string]string{"a.txt": "one", "keep.txt": "same", "sub/b.txt": "bee", "old/x.txt": "x"}
	res, err := f.sync(v1, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.wantDisk(v1)
	if res.Written != 6 {
		t.Errorf("first sync wrote %d paths, want 6", res.Written)
	}
	keepInfo, _ := os.Stat(filepath.Join(f.dir, "keep.txt"))

	v2 := map[string]string{"a.txt": "one, changed", "keep.txt": "same", "sub/b.txt": "bee", "sub/new.txt": "new", "c.txt": "sea"}
	res, err = f.sync(v2, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.wantDisk(v2)
	// Written: a.txt, sub/new.txt, c.txt; removed: old/x.txt and old.
	if res.Written != 3 || res.Removed != 2 || res.Unchanged != 2 || len(res.Kept) != 0 {
		t.Errorf("second sync: %+v, want 3 written, 2 removed, 2 unchanged (keep.txt, sub/b.txt)", res)
	}
	if fi, _ := os.Stat(filepath.Join(f.dir, "keep.txt")); !os.SameFile(fi, keepInfo) || fi.ModTime() != keepInfo.ModTime() {
		t.Error("keep.txt, unchanged, was rewritten")
	}
	if f.st.Next != nil || f.st.Root == "" {
		t.Errorf("state after the sync: %+v", f.st)
	}
}

func TestFollowFolderTypeChange(t *testing.T) {
	f := newFolderTest(t)
	if _, err := f.sync(map[string]string{"x": "file", "d/y": "y"}, nil); err != nil {
		t.Fatal(err)
	}
	v2 := map[string]string{"x/inner": "now a folder", "d": "now a file"}
	if _, err := f.sync(v2, nil); err != nil {
		t.Fatal(err)
	}
	f.wantDisk(v2)
}

func TestFollowFolderUserFiles(t *testing.T) {
	f := newFolderTest(t)
	if _, err := f.sync(map[string]string{"a": "a", "gone/b": "b", "edit": "v1"}, nil); err != nil {
		t.Fatal(err)
	}
	// The user adds files (one where the next version puts one, one in a
	// folder the next version drops) and edits one the follower wrote.
	writeTree(t, f.dir, map[string][]byte{"mine": []byte("mine"), "clash": []byte("user's"), "gone/mine": []byte("mine too")})
	os.WriteFile(filepath.Join(f.dir, "edit"), []byte("edited by the user"), 0o644)

	res, err := f.sync(map[string]string{"a": "a2", "clash": "follow's", "edit": "v2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.wantDisk(map[string]string{"a": "a2", "mine": "mine", "clash": "user's", "gone/mine": "mine too", "edit": "edited by the user"})
	slices.Sort(res.Kept)
	want := []string{"clash (not written by follow", "edit (changed since", "gone (a folder with files of yours"}
	if len(res.Kept) != len(want) {
		t.Fatalf("kept %q, want %d paths", res.Kept, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(res.Kept[i], w) {
			t.Errorf("kept[%d] = %q, want %q...", i, res.Kept[i], w)
		}
	}
}

// TestFollowFolderCrash cuts a sync short after each of its writes in
// turn and checks that the folder then holds, per path, the old or the
// new file, and that the next run finishes the update.
func TestFollowFolderCrash(t *testing.T) {
	v1 := map[string]string{"a": "a1", "b": "b1", "d/c": "c1", "old": "old"}
	v2 := map[string]string{"a": "a2", "b": "b1", "d/c": "c2", "d/e": "e2", "n/f": "f2"}
	errCrash := errors.New("crash")
	for cut := 1; ; cut++ {
		f := newFolderTest(t)
		if _, err := f.sync(v1, nil); err != nil {
			t.Fatal(err)
		}
		writes := 0
		_, err := f.sync(v2, func(string) error {
			if writes++; writes == cut {
				return errCrash
			}
			return nil
		})
		if err == nil {
			break // cut after the last write: nothing left to test
		}
		if !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		for p, got := range f.disk() {
			if strings.HasSuffix(p, "/") {
				continue
			}
			if got != v1[p] && got != v2[p] {
				t.Errorf("cut %d: %s holds %q, neither version's", cut, p, got)
			}
		}
		if f.st.Next == nil {
			t.Fatalf("cut %d: no journal of the update cut short", cut)
		}
		// A kill in the middle of a file leaves its temporary file.
		writeTree(t, f.dir, map[string][]byte{"d/.e.share-tmp-3k2j1": []byte("half")})
		// The next run goes to a third version: what the cut run wrote
		// is still the follower's to replace or remove.
		v3 := map[string]string{"a": "a3", "d/c": "c2"}
		res, err := f.sync(v3, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Kept) != 0 {
			t.Errorf("cut %d: the resumed run kept %q", cut, res.Kept)
		}
		f.wantDisk(v3)
	}
}
