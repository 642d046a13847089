package car

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
)

func randBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// importFile stores data as a DAG of chunk-byte leaves.
func importFile(t testing.TB, s *dag.MemStore, data []byte, chunk int) cid.Cid {
	t.Helper()
	sp, err := chunker.FixedSize(chunk)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := dag.ImportFile(context.Background(), bytes.NewReader(data), s, dag.ImportOptions{Chunker: sp})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// importTree stores a directory tree holding files (path -> content).
func importTree(t testing.TB, s *dag.MemStore, files map[string][]byte, chunk int) cid.Cid {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, "root", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sp, err := chunker.FixedSize(chunk)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dag.ImportPath(context.Background(), filepath.Join(dir, "root"), s, dag.ImportOptions{Chunker: sp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// walkOrder lists the distinct CIDs under roots in dag.Walk order.
func walkOrder(t *testing.T, g share.Getter, roots ...cid.Cid) []cid.Cid {
	t.Helper()
	var out []cid.Cid
	seen := make(map[cid.Cid]bool)
	for _, r := range roots {
		err := dag.Walk(context.Background(), g, r, dag.WalkOptions{}, func(c cid.Cid) error {
			if seen[c] {
				return dag.SkipNode
			}
			seen[c] = true
			out = append(out, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// countingGetter counts Gets per CID.
type countingGetter struct {
	share.Getter
	mu sync.Mutex
	n  map[cid.Cid]int
}

func (g *countingGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	g.mu.Lock()
	g.n[c]++
	g.mu.Unlock()
	return g.Getter.Get(ctx, c)
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := dag.NewMemStore()
	big := randBytes(1, 300*1024+17) // 3 levels with 1 KiB chunks
	file := importFile(t, s, big, 1024)
	tiny := importFile(t, s, []byte("tiny"), 1024)
	tree := importTree(t, s, map[string][]byte{
		"a.txt":         []byte("hello"),
		"sub/b.bin":     randBytes(2, 5000),
		"sub/same.bin":  randBytes(2, 5000), // shares every block with b.bin
		"sub/deep/c.md": []byte("# c"),
		"big.bin":       big, // shares the whole DAG of file
	}, 1024)
	roots := []cid.Cid{file, tiny, tree}

	cg := &countingGetter{Getter: s, n: make(map[cid.Cid]int)}
	var buf bytes.Buffer
	if err := Write(ctx, &buf, cg, roots...); err != nil {
		t.Fatal(err)
	}
	for c, n := range cg.n {
		if n != 1 {
			t.Errorf("block %s fetched %d times", c, n)
		}
	}

	want := walkOrder(t, s, roots...)
	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if h := r.Header(); h.Version != 1 || !equalCIDs(h.Roots, roots) {
		t.Fatalf("header %+v, want roots %v", h, roots)
	}
	for i := 0; ; i++ {
		c, data, err := r.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d blocks, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(want) || c != want[i] {
			t.Fatalf("block %d is %s, want walk order", i, c)
		}
		if stored, _ := s.Get(ctx, c); !bytes.Equal(stored.Data, data) {
			t.Fatalf("block %s differs", c)
		}
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next after EOF: %v", err)
	}

	dst := dag.NewMemStore()
	got, err := Import(ctx, bytes.NewReader(buf.Bytes()), dst)
	if err != nil {
		t.Fatal(err)
	}
	if !equalCIDs(got, roots) || dst.Len() != len(want) {
		t.Fatalf("Import: roots %v, %d blocks; want %v, %d", got, dst.Len(), roots, len(want))
	}
	fr, err := dag.NewFileReader(ctx, dst, file)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(fr)
	if err != nil || !bytes.Equal(back, big) {
		t.Fatalf("file read back from the import: %v", err)
	}
}

func equalCIDs(a, b []cid.Cid) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHeaderBytes(t *testing.T) {
	c := dag.Sum(dag.Raw, []byte("x"))
	got := encodeHeader([]cid.Cid{c})
	want := "a2" + "65" + hex.EncodeToString([]byte("roots")) + "81" + "d82a" + "5825" + "00" + hex.EncodeToString(c.Bytes()) +
		"67" + hex.EncodeToString([]byte("version")) + "01"
	if hex.EncodeToString(got) != want {
		t.Fatalf("header\n%x\nwant\n%s", got, want)
	}
	h, err := decodeHeader(got)
	if err != nil || h.Version != 1 || len(h.Roots) != 1 || h.Roots[0] != c {
		t.Fatalf("decode: %+v, %v", h, err)
	}
	// Keys in the other order are still a header.
	swapped := append(append([]byte{0xa2, 0x67}, "version"...), 0x01)
	swapped = append(swapped, got[1:len(got)-9]...)
	if h, err := decodeHeader(swapped); err != nil || h.Roots[0] != c {
		t.Fatalf("swapped keys: %+v, %v", h, err)
	}
}

func TestBadHeaders(t *testing.T) {
	c := dag.Sum(dag.Raw, []byte("x"))
	root := append([]byte{0xd8, 0x2a, 0x58, 0x25, 0x00}, c.Bytes()...)
	hdr := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	txt := func(s string) []byte { return append([]byte{0x60 | byte(len(s))}, s...) }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"not a map", []byte{0x01}, ErrMalformed},
		{"carv2 pragma", hdr([]byte{0xa1}, txt("version"), []byte{0x02}), ErrUnsupportedVersion},
		{"version 3", hdr([]byte{0xa2}, txt("roots"), []byte{0x80}, txt("version"), []byte{0x03}), ErrUnsupportedVersion},
		{"no roots", hdr([]byte{0xa1}, txt("version"), []byte{0x01}), ErrMalformed},
		{"no version", hdr([]byte{0xa1}, txt("roots"), []byte{0x80}), ErrMalformed},
		{"unknown key", hdr([]byte{0xa3}, txt("roots"), []byte{0x80}, txt("version"), []byte{0x01}, txt("x"), []byte{0x01}), ErrMalformed},
		{"duplicate key", hdr([]byte{0xa3}, txt("roots"), []byte{0x80}, txt("version"), []byte{0x01}, txt("version"), []byte{0x01}), ErrMalformed},
		{"trailing bytes", hdr([]byte{0xa2}, txt("roots"), []byte{0x80}, txt("version"), []byte{0x01, 0x00}), ErrMalformed},
		{"non-minimal int", hdr([]byte{0xa2}, txt("roots"), []byte{0x80}, txt("version"), []byte{0x18, 0x01}), ErrMalformed},
		{"indefinite map", hdr([]byte{0xbf}, txt("roots"), []byte{0x80}, txt("version"), []byte{0x01, 0xff}), ErrMalformed},
		{"huge array", hdr([]byte{0xa2}, txt("roots"), []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), ErrMalformed},
		{"wrong tag", hdr([]byte{0xa2}, txt("roots"), []byte{0x81, 0xd8, 0x2b}, root[2:], txt("version"), []byte{0x01}), ErrMalformed},
		{"no 0x00 prefix", hdr([]byte{0xa2}, txt("roots"), []byte{0x81, 0xd8, 0x2a, 0x58, 0x24}, c.Bytes(), txt("version"), []byte{0x01}), ErrMalformed},
		{"bad cid", hdr([]byte{0xa2}, txt("roots"), []byte{0x81, 0xd8, 0x2a, 0x43, 0x00, 0x01, 0x55}, txt("version"), []byte{0x01}), ErrMalformed},
		{"truncated root", hdr([]byte{0xa2}, txt("roots"), []byte{0x81}, root[:20]), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeHeader(tc.b); !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
		})
	}
	// An empty roots array is allowed on reading.
	if h, err := decodeHeader(hdr([]byte{0xa2}, txt("roots"), []byte{0x80}, txt("version"), []byte{0x01})); err != nil || len(h.Roots) != 0 {
		t.Errorf("empty roots: %+v, %v", h, err)
	}
}

func writeCAR(t testing.TB, s *dag.MemStore, roots ...cid.Cid) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, s, roots...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(b []byte) (int, error) {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	for n := 0; ; n++ {
		_, _, err := r.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func TestCorruptBlock(t *testing.T) {
	s := dag.NewMemStore()
	root := importFile(t, s, randBytes(3, 10000), 1024)
	b := writeCAR(t, s, root)
	// Flip the last byte: it belongs to the last leaf.
	b[len(b)-1] ^= 1
	leaves := walkOrder(t, s, root)
	last := leaves[len(leaves)-1]
	_, err := readAll(b)
	if !errors.Is(err, dag.ErrHashMismatch) || !strings.Contains(err.Error(), last.String()) {
		t.Fatalf("err %v, want a hash mismatch naming %s", err, last)
	}
	if _, err := Import(context.Background(), bytes.NewReader(b), dag.NewMemStore()); !errors.Is(err, dag.ErrHashMismatch) {
		t.Fatalf("Import: %v", err)
	}
}

func TestWriteRefusesCorruptStore(t *testing.T) {
	s := dag.NewMemStore()
	root := importFile(t, s, randBytes(4, 5000), 1024)
	leaves := walkOrder(t, s, root)
	bad := leaves[2]
	s.Set(bad, []byte("not the leaf"))
	err := Write(context.Background(), io.Discard, s, root)
	if !errors.Is(err, dag.ErrHashMismatch) || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("err %v, want a hash mismatch naming %s", err, bad)
	}
	s.Delete(bad)
	if err := Write(context.Background(), io.Discard, s, root); !errs.Is(errs.NotFound, err) {
		t.Fatalf("missing block: %v", err)
	}
	if err := Write(context.Background(), io.Discard, s); err == nil {
		t.Fatal("no roots: no error")
	}
}

func TestTruncated(t *testing.T) {
	s := dag.NewMemStore()
	root := importFile(t, s, randBytes(5, 4000), 1024)
	b := writeCAR(t, s, root)
	full, err := readAll(b)
	if err != nil {
		t.Fatal(err)
	}
	hlen := 1 + int(b[0])
	for _, n := range []int{1, 5, hlen, hlen + 1, hlen + 3, len(b) / 2, len(b) - 1} {
		blocks, err := readAll(b[:n])
		if n == hlen {
			// The cut falls between sections: a shorter, valid file.
			if err != nil || blocks != 0 {
				t.Errorf("cut at %d: %d blocks, %v", n, blocks, err)
			}
			continue
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrMalformed) {
			t.Errorf("cut at %d of %d: %d/%d blocks, err %v; want unexpected EOF", n, len(b), blocks, full, err)
		}
	}
}

func TestLimits(t *testing.T) {
	c := dag.Sum(dag.Raw, []byte("x"))
	hdr := encodeHeader([]cid.Cid{c})
	car := func(rest ...byte) []byte {
		return append(append([]byte{byte(len(hdr))}, hdr...), rest...)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"huge header", []byte{0x80, 0x80, 0x80, 0x01}},
		{"zero header", []byte{0x00}},
		{"non-minimal header length", append([]byte{byte(len(hdr)) | 0x80, 0x00}, hdr...)},
		{"huge section", car(0x80, 0x80, 0x80, 0x04)},
		{"varint overflow", car(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"empty section", car(0x00)},
		{"bad cid", car(0x03, 0x01, 0x55, 0x1e)},
		{"cidv0 without sha256 digest", car(0x03, 0x12, 0x20, 0x00)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readAll(tc.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("err %v, want ErrMalformed", err)
			}
		})
	}
}

// sampleCARs are seeds for FuzzReader.
func sampleCARs(t testing.TB) [][]byte {
	s := dag.NewMemStore()
	a := importFile(t, s, randBytes(6, 3000), 1024)
	b := importTree(t, s, map[string][]byte{"x": []byte("x"), "d/y": randBytes(7, 2100)}, 1024)
	return [][]byte{writeCAR(t, s, a), writeCAR(t, s, b, a)}
}

func FuzzReader(f *testing.F) {
	for _, b := range sampleCARs(f) {
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for {
			c, data, err := r.Next()
			if err != nil {
				return
			}
			if dag.Verify(c, data) != nil || len(data) > MaxBlockSize {
				t.Fatalf("Next returned an unverified block %s", c)
			}
		}
	})
}

func BenchmarkWriteRead(b *testing.B) {
	s := dag.NewMemStore()
	data := randBytes(8, 16<<20)
	root := importFile(b, s, data, 1<<20)
	var buf bytes.Buffer
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		buf.Reset()
		if err := Write(context.Background(), &buf, s, root); err != nil {
			b.Fatal(err)
		}
		if _, err := readAll(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

// slowGetter delays every Get and records the most Gets in flight.
type slowGetter struct {
	share.Getter
	mu       sync.Mutex
	inFlight int
	most     int
}

func (g *slowGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	g.mu.Lock()
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	select {
	case <-time.After(2 * time.Millisecond):
	case <-ctx.Done():
		return share.Block{}, ctx.Err()
	}
	return g.Getter.Get(ctx, c)
}

func TestWriteReadAhead(t *testing.T) {
	s := dag.NewMemStore()
	root := importFile(t, s, randBytes(10, 64*1024), 1024)
	g := &slowGetter{Getter: s}
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, g, root); err != nil {
		t.Fatal(err)
	}
	if g.most < 2 {
		t.Errorf("at most %d fetches in flight, want read-ahead", g.most)
	}
	if g.most > readAhead+2 {
		t.Errorf("%d fetches in flight, above the read-ahead bound", g.most)
	}
	if n, err := readAll(buf.Bytes()); err != nil || n != len(walkOrder(t, s, root)) {
		t.Fatalf("%d blocks, %v", n, err)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	s := dag.NewMemStore()
	root := importFile(t, s, randBytes(11, 200*1024), 1024)
	if err := Write(context.Background(), &failWriter{n: 100 << 10}, s, root); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failing writer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Write(ctx, io.Discard, s, root); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
