package drop

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriterDropsBehind(t *testing.T) {
	const chunk = 8 << 20 // smaller than Chunk: the same logic, less to write
	const size = 12 * chunk
	data := make([]byte, size)
	rand.Read(data)
	for _, tc := range []struct {
		name        string
		from        int64
		maxResident int
	}{
		{"all", 0, 3 * chunk},
		{"from", 4 * chunk, 7 * chunk},
		{"writeback", size, size}, // NewWriteback: everything stays
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w := newFrom(f, tc.from, chunk)
			if tc.name == "writeback" {
				w = NewWriteback(f)
				w.chunk = chunk
			}
			for off := 0; off < size; off += 300 << 10 { // writes that straddle chunks
				if _, err := w.Write(data[off:min(off+300<<10, size)]); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			if w.Offset() != size {
				t.Fatalf("offset %d, want %d", w.Offset(), size)
			}
			r, err := Resident(f)
			if err != nil {
				t.Fatal(err)
			}
			res := int(r)
			if res > tc.maxResident {
				t.Errorf("%d bytes of the file still cached, want at most %d", res, tc.maxResident)
			}
			if tc.from > 0 && res < int(tc.from) {
				t.Errorf("%d bytes cached, want the first %d kept", res, tc.from)
			}
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("file content differs from what was written")
			}
		})
	}
}

// BenchmarkWrite writes 64 MiB files through a Writer ("drop") and plainly
// ("cached"); on VMs with free page reporting the difference is large.
func BenchmarkWrite(b *testing.B) {
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	for _, mode := range []string{"drop", "cached"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(64 << 20)
			for i := 0; i < b.N; i++ {
				f, err := os.Create(filepath.Join(dir, "f"))
				if err != nil {
					b.Fatal(err)
				}
				var w io.WriteCloser = f
				if mode == "drop" {
					w = New(f)
				}
				for j := 0; j < 64; j++ {
					if _, err := w.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				if mode == "drop" {
					w.Close()
				}
				f.Close()
				os.Remove(f.Name())
			}
		})
	}
}
