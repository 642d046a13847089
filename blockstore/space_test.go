package blockstore

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/share-p2p/share/errs"
)

// TestNoSpaceKind: a full disk is an error of kind NoSpace that says why,
// and still matches ErrNoSpace.
func TestNoSpaceKind(t *testing.T) {
	s := &Store{dir: "/repo/db", readOnly: true}
	for _, err := range []error{s.checkSpace(1), s.writable()} {
		if !errs.Is(errs.NoSpace, err) || !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "read-only because /repo/db was full") {
			t.Errorf("%v: kind %v, want NoSpace, ErrNoSpace and the reason", err, errs.KindOf(err))
		}
		if got := errs.Reason(err); !strings.HasPrefix(got, "no space left on device: ") {
			t.Errorf("Reason = %q", got)
		}
	}
}

// duSum is what du counts under dir: the blocks every file holds.
func duSum(t *testing.T, dir string) uint64 {
	t.Helper()
	var total uint64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		total += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// TestStatDiskUsage checks that Stat's DiskUsage is what du sees in the
// store's directory (Pebble's own figure left out the WAL's preallocated
// blocks and every file that is not an sstable: 1 MiB where du said 27).
func TestStatDiskUsage(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	defer s.Close()
	b := s.NewBatch()
	for i := range 200 {
		c, data := testBlock(t, uint64(i), 32<<10)
		if err := b.Put(t.Context(), c, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	st, err := s.Stat(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	du := duSum(t, dir)
	// Pebble may roll a file between the two walks: allow a little.
	if diff := max(st.DiskUsage, du) - min(st.DiskUsage, du); diff > du/20+64<<10 {
		t.Fatalf("DiskUsage = %d, du says %d", st.DiskUsage, du)
	}
}
