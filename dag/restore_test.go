package dag

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/errs"
)

// umask returns the process's umask (and puts it back).
func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

// importMeta imports p with its modes and times.
func importMeta(t *testing.T, s *MemStore, p string) cid.Cid {
	t.Helper()
	f, err := FormatOptions{PreserveMode: true, PreserveMtime: true}.Format()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ImportPath(t.Context(), p, s, ImportOptions{Format: f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWriteMetadata: get restores the modes (permission bits, less the
// umask; never setuid, setgid or sticky) and times (of files, directories
// after their contents, and symlinks themselves) a DAG records.
func TestWriteMetadata(t *testing.T) {
	dir := t.TempDir()
	root := writeMetaTree(t, dir)
	s := NewMemStore()
	for _, top := range []string{"", "run.sh"} { // the tree, and a file alone
		c := importMeta(t, s, filepath.Join(root, top))
		out := filepath.Join(dir, "out"+top)
		if err := WriteTo(t.Context(), s, c, out, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, e := range metaTree {
			if top != "" && e.name != top {
				continue
			}
			p := filepath.Join(out, filepath.FromSlash(e.name))
			if top != "" {
				p = out
			}
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := time.Parse(time.RFC3339Nano, e.mtime)
			if !fi.ModTime().Equal(want) {
				t.Errorf("%s: mtime %v, want %v", e.name, fi.ModTime().UTC(), want)
			}
			if e.link {
				continue
			}
			if got, want := fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky), e.mode.Perm()&^umask(); got != want {
				t.Errorf("%s: mode %v, want %v", e.name, got, want)
			}
		}
	}
}

// TestWriteNoMetadata: without metadata, files are 0644 and directories
// 0755, less the umask, as before.
func TestWriteNoMetadata(t *testing.T) {
	dir := t.TempDir()
	root := writeMetaTree(t, dir)
	s := NewMemStore()
	c, err := ImportPath(t.Context(), root, s, ImportOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := WriteTo(t.Context(), s, c, out, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"run.sh": 0o644, "sub": 0o755 | os.ModeDir, "tmp": 0o755 | os.ModeDir} {
		fi, err := os.Lstat(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if want := want &^ umask(); fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
}

// linkTree writes a tree of symlinks safe and unsafe, and returns it and
// the links SafeLinks must refuse.
func linkTree(t *testing.T, dir string) (string, []string) {
	t.Helper()
	root := filepath.Join(dir, "links")
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"ok":        "a",
		"sub/up":    "../a",
		"sub/dot":   "./../sub",
		"abs":       "/etc/passwd",
		"out":       "../elsewhere",
		"sub/out":   "../../elsewhere",
		"sub/trick": "x/../../a",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	return root, []string{"abs", "out", "sub/out", "sub/trick"}
}

// TestWriteSymlinks: SafeLinks writes the links that stay inside and
// refuses the others, one report each, writing the rest and saying so at
// the end; AllLinks writes them all verbatim; NoLinks none.
func TestWriteSymlinks(t *testing.T) {
	dir := t.TempDir()
	root, unsafe := linkTree(t, dir)
	s := NewMemStore()
	c, err := ImportPath(t.Context(), root, s, ImportOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"abs", "ok", "out", "sub/dot", "sub/out", "sub/trick", "sub/up"}
	for _, tc := range []struct {
		name   string
		policy LinkPolicy
		want   []string // the links written
	}{
		{"safe", SafeLinks, []string{"ok", "sub/dot", "sub/up"}},
		{"all", AllLinks, all},
		{"none", NoLinks, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name)
			var refused []string
			err := WriteTo(t.Context(), s, c, out, WriteOptions{Links: tc.policy, Refused: func(p, target, why string) {
				rel, _ := filepath.Rel(out, p)
				refused = append(refused, filepath.ToSlash(rel))
			}})
			if tc.policy == SafeLinks {
				if !errors.Is(err, ErrUnsafeLink) || !errs.Is(errs.Invalid, err) {
					t.Fatalf("err = %v, want ErrUnsafeLink", err)
				}
				slices.Sort(refused)
				if !slices.Equal(refused, unsafe) {
					t.Errorf("refused %q, want %q", refused, unsafe)
				}
			} else if err != nil || len(refused) > 0 {
				t.Fatalf("err = %v, refused %q", err, refused)
			}
			if b, err := os.ReadFile(filepath.Join(out, "a")); err != nil || string(b) != "a\n" {
				t.Fatalf("a: %q, %v: the rest of the tree must be written", b, err)
			}
			var got []string
			for _, name := range all {
				target, err := os.Readlink(filepath.Join(out, filepath.FromSlash(name)))
				if err != nil {
					continue
				}
				if want, _ := os.Readlink(filepath.Join(root, filepath.FromSlash(name))); target != want {
					t.Errorf("%s -> %s, want %s", name, target, want)
				}
				got = append(got, name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("links written %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWriteRootSymlink: a symlink written alone is checked from the
// directory it is written in.
func TestWriteRootSymlink(t *testing.T) {
	dir := t.TempDir()
	s := NewMemStore()
	for i, tc := range []struct {
		target string
		policy LinkPolicy
		ok     bool
	}{
		{"a/b", SafeLinks, true},
		{"../up", SafeLinks, false},
		{"/etc", SafeLinks, false},
		{"/etc", AllLinks, true},
		{"a", NoLinks, false},
	} {
		src := filepath.Join(dir, "src", tc.target)
		os.MkdirAll(filepath.Dir(src), 0o755)
		name := filepath.Join(dir, "src", "l"+string(rune('0'+i)))
		if err := os.Symlink(tc.target, name); err != nil {
			t.Fatal(err)
		}
		c, err := ImportPath(t.Context(), name, s, ImportOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out"+string(rune('0'+i)))
		err = WriteTo(t.Context(), s, c, out, WriteOptions{Links: tc.policy})
		got, lerr := os.Readlink(out)
		if tc.ok && (err != nil || got != tc.target) {
			t.Errorf("%s (%d): %v, link %q %v", tc.target, tc.policy, err, got, lerr)
		}
		if !tc.ok && (err == nil || lerr == nil) {
			t.Errorf("%s (%d): err %v, link %q written", tc.target, tc.policy, err, got)
		}
	}
}
