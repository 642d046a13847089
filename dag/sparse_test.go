package dag

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteSparse: a file whose leaves are all zeros comes back with holes
// where they were, the same bytes and the same size, even when it ends in a
// hole.
func TestWriteSparse(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "sparse")
	const size = 64<<20 + 12345 // the last chunk a hole too, and short
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("data in the middle"), 20<<20+7); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s := NewMemStore()
	root, err := ImportPath(t.Context(), src, s, ImportOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := WriteTo(t.Context(), s, root, out, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, src, out)
	var st syscall.Stat_t
	if err := syscall.Stat(out, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size {
		t.Fatalf("size %d, want %d", st.Size, size)
	}
	// One chunk holds data: 1 MiB, and a little for the file system.
	if used := st.Blocks * 512; used > 2<<20 {
		t.Fatalf("%d bytes allocated for a file of one data chunk: holes were written", used)
	}
}

// sameFiles fails unless files a and b hold the same bytes.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := 0; ; off += len(ba) {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			t.Fatalf("%s and %s differ after byte %d", a, b, off)
		}
		if ea != nil || eb != nil {
			if ea != eb {
				t.Fatalf("%s: %v, %s: %v", a, ea, b, eb)
			}
			return
		}
	}
}

// BenchmarkIsZero measures the check every written segment goes through:
// a zero chunk is scanned whole, data stops at its first bytes.
func BenchmarkIsZero(b *testing.B) {
	zero := make([]byte, 1<<20)
	data := randBytes(1, 1<<20)
	for _, bc := range []struct {
		name string
		p    []byte
	}{{"zero", zero}, {"data", data}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.p)))
			for b.Loop() {
				isZero(bc.p)
			}
		})
	}
}
