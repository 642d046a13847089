package dag

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/errs"
)

func randBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	key[2] = byte(seed >> 16)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func spec(t testing.TB, n int) chunker.Spec {
	t.Helper()
	s, err := chunker.FixedSize(n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func importBytes(t testing.TB, s *MemStore, data []byte, chunk int) cid.Cid {
	t.Helper()
	c, n, err := ImportFile(context.Background(), bytes.NewReader(data), s, ImportOptions{Chunker: spec(t, chunk)})
	if err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(data)) {
		t.Fatalf("size %d, want %d", n, len(data))
	}
	return c
}

// kuboBalanced is kubo's balanced builder transcribed (importer/balanced):
// the reference the streaming builder must agree with.
func kuboBalanced(t *testing.T, chunks [][]byte) cid.Cid {
	t.Helper()
	type node struct {
		c            cid.Cid
		tsize, fsize uint64
	}
	i := 0
	done := func() bool { return i >= len(chunks) }
	leaf := func() node {
		d := chunks[i]
		i++
		return node{Sum(Raw, d), uint64(len(d)), uint64(len(d))}
	}
	commit := func(children []node) node {
		var links []PBLink
		fs := UnixFS{Type: TypeFile, HasFileSize: true}
		var ts uint64
		for _, ch := range children {
			links = append(links, PBLink{Hash: ch.c, Tsize: ch.tsize})
			fs.BlockSizes = append(fs.BlockSizes, ch.fsize)
			fs.FileSize += ch.fsize
			ts += ch.tsize
		}
		blk := (&PBNode{Links: links, Data: fs.Marshal()}).Marshal()
		return node{Sum(DagPB, blk), ts + uint64(len(blk)), fs.FileSize}
	}
	var fill func(children []node, depth int) node
	fill = func(children []node, depth int) node {
		for len(children) < MaxLinks && !done() {
			if depth == 1 {
				children = append(children, leaf())
			} else {
				children = append(children, fill(nil, depth-1))
			}
		}
		return commit(children)
	}
	if done() {
		return Sum(Raw, nil)
	}
	root := leaf()
	for depth := 1; !done(); depth++ {
		root = fill([]node{root}, depth)
	}
	return root.c
}

// TestBalancedLayout compares the streaming builder with kubo's recursive
// one at the sizes where the tree changes shape, using 1-byte chunks.
func TestBalancedLayout(t *testing.T) {
	const m = MaxLinks
	for _, n := range []int{0, 1, 2, m - 1, m, m + 1, 2 * m, 2*m + 1, m * m, m*m + 1, m*m + m, m*m + m + 1} {
		data := randBytes(uint64(n), n)
		chunks := make([][]byte, n)
		for i := range chunks {
			chunks[i] = data[i : i+1]
		}
		got := importBytes(t, NewMemStore(), data, 1)
		if want := kuboBalanced(t, chunks); got != want {
			t.Errorf("%d leaves: root %s, kubo's layout gives %s", n, got, want)
		}
	}
}

// getData returns the bytes of block c of s.
func getData(t testing.TB, s share.Getter, c cid.Cid) []byte {
	t.Helper()
	b, err := s.Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return b.Data
}

func readAll(t *testing.T, s share.Getter, c cid.Cid) []byte {
	t.Helper()
	r, err := NewFileReader(context.Background(), s, c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	tests := []struct{ size, chunk int }{
		{0, 1024}, {1, 1024}, {1023, 1024}, {1024, 1024}, {1025, 1024},
		{174 * 100, 100}, {174*100 + 1, 100}, {174*174 + 5, 1}, {3 << 20, 1 << 20}, {5<<20 + 3, 256 << 10},
	}
	for _, tt := range tests {
		data := randBytes(uint64(tt.size), tt.size)
		s := NewMemStore()
		root := importBytes(t, s, data, tt.chunk)
		checkRoundTrip(t, s, root, data, tt.chunk)
	}
}

// checkRoundTrip reads the file root back through FileReader's Read,
// ReadAt, Seek and WriteTo, and Stat, and compares with data, which was
// imported in chunks of chunk bytes.
func checkRoundTrip(t *testing.T, s share.Getter, root cid.Cid, data []byte, chunk int) {
	t.Helper()
	if got := readAll(t, s, root); !bytes.Equal(got, data) {
		t.Fatalf("size %d chunk %d: WriteTo differs", len(data), chunk)
	}
	r, err := NewFileReader(context.Background(), s, root)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", r.Size(), len(data))
	}
	// iotest.TestReader exercises Read, ReadAt and Seek at many
	// offsets, a few bytes at a time: slow under -race on big inputs.
	if len(data) <= 20000 {
		if err := iotest.TestReader(r, data); err != nil {
			t.Fatalf("size %d chunk %d: %v", len(data), chunk, err)
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		off := rnd.IntN(len(data) + 2)
		n := rnd.IntN(3*chunk + 1)
		p := make([]byte, n)
		got, err := r.ReadAt(p, int64(off))
		want := max(0, min(n, len(data)-off))
		if got != want || got > 0 && !bytes.Equal(p[:got], data[off:off+got]) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d bytes", n, off, got, err, want)
		}
		if got < n && err != io.EOF {
			t.Fatalf("short ReadAt err = %v, want io.EOF", err)
		}
		// WriteTo from a Seek position, now and then: it reads to the end.
		if rnd.IntN(5) != 0 {
			continue
		}
		if _, err := r.Seek(int64(off), io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := r.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		if off <= len(data) && !bytes.Equal(buf.Bytes(), data[off:]) {
			t.Fatalf("WriteTo from %d differs", off)
		}
	}
	info, err := Stat(context.Background(), s, root)
	if err != nil || info.Type != TypeFile || info.Size != uint64(len(data)) {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
}

// TestReadInlineData reads files whose nodes carry data inline, as other
// importers write them (dag-pb leaves, data in inner nodes).
func TestReadInlineData(t *testing.T) {
	s := NewMemStore()
	put := func(codec uint64, b []byte) (cid.Cid, uint64) {
		c := Sum(codec, b)
		s.Put(context.Background(), c, b)
		return c, uint64(len(b))
	}
	pbLeaf := func(d string) []byte {
		fs := UnixFS{Type: TypeRaw, Data: []byte(d), FileSize: uint64(len(d)), HasFileSize: true}
		return (&PBNode{Data: fs.Marshal()}).Marshal()
	}
	a, at := put(DagPB, pbLeaf("bbb"))
	b, bt := put(Raw, []byte("cc"))
	e, et := put(Raw, nil)
	fs := UnixFS{Type: TypeFile, Data: []byte("aa"), FileSize: 7, HasFileSize: true, BlockSizes: []uint64{3, 0, 2}}
	root, _ := put(DagPB, (&PBNode{Links: []PBLink{{Hash: a, Tsize: at}, {Hash: e, Tsize: et}, {Hash: b, Tsize: bt}}, Data: fs.Marshal()}).Marshal())
	if got := string(readAll(t, s, root)); got != "aabbbcc" {
		t.Fatalf("content %q, want aabbbcc", got)
	}
	r, _ := NewFileReader(context.Background(), s, root)
	if err := iotest.TestReader(r, []byte("aabbbcc")); err != nil {
		t.Fatal(err)
	}
}

func TestCorruption(t *testing.T) {
	data := randBytes(7, 200*1000)
	tests := []struct {
		name    string
		corrupt func(s *MemStore, root cid.Cid) (bad, newRoot cid.Cid) // bad: the CID the error must name
		want    any                                                    // an error the error wraps, or its errs.Kind
	}{
		{"leaf bytes", func(s *MemStore, root cid.Cid) (cid.Cid, cid.Cid) {
			l := nthLink(t, s, root, 1, 0)
			b := getData(t, s, l)
			s.Set(l, append(slices.Clone(b[:len(b)-1]), b[len(b)-1]^1))
			return l, root
		}, ErrHashMismatch},
		{"inner node bytes", func(s *MemStore, root cid.Cid) (cid.Cid, cid.Cid) {
			l := nthLink(t, s, root, 1)
			b := getData(t, s, l)
			s.Set(l, append(slices.Clone(b), 0))
			return l, root
		}, ErrHashMismatch},
		{"missing leaf", func(s *MemStore, root cid.Cid) (cid.Cid, cid.Cid) {
			l := nthLink(t, s, root, 0, 3)
			s.Delete(l)
			return l, root
		}, errs.NotFound},
		{"leaf shorter than blocksize", func(s *MemStore, root cid.Cid) (cid.Cid, cid.Cid) {
			// A well-hashed leaf that is not the size its parent says.
			l := nthLink(t, s, root, 0, 2)
			b := getData(t, s, l)
			short := Sum(Raw, b[:10])
			s.Put(context.Background(), short, b[:10])
			return short, replaceLink(t, s, root, []int{0, 2}, short)
		}, ErrInvalidNode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewMemStore()
			root := importBytes(t, s, data, 1000) // 200 leaves: two levels
			bad, root := tt.corrupt(s, root)
			r, err := NewFileReader(context.Background(), s, root)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_, err = r.WriteTo(&buf)
			checkErr(t, err, tt.want, bad)
			if !bytes.Equal(buf.Bytes(), data[:buf.Len()]) {
				t.Fatal("WriteTo wrote wrong bytes before failing")
			}
			_, err = io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
			checkErr(t, err, tt.want, bad)
			if tt.want == ErrInvalidNode {
				return // Walk checks blocks, not file sizes
			}
			err = Walk(context.Background(), s, root, WalkOptions{VerifyLeaves: true}, func(cid.Cid) error { return nil })
			checkErr(t, err, tt.want, bad)
		})
	}
	// A corrupt root is caught before anything is read.
	s := NewMemStore()
	root := importBytes(t, s, data, 1000)
	s.Set(root, []byte("junk"))
	if _, err := NewFileReader(context.Background(), s, root); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("corrupt root: %v", err)
	}
}

func checkErr(t *testing.T, err error, want any, bad cid.Cid) {
	t.Helper()
	if k, ok := want.(errs.Kind); ok && !errs.Is(k, err) || !ok && !errors.Is(err, want.(error)) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("error %q does not name %s", err, bad)
	}
}

// nthLink follows link indexes from root.
func nthLink(t *testing.T, s *MemStore, root cid.Cid, path ...int) cid.Cid {
	t.Helper()
	c := root
	for _, i := range path {
		pn, err := DecodePBNode(getData(t, s, c))
		if err != nil {
			t.Fatal(err)
		}
		c = pn.Links[i].Hash
	}
	return c
}

// replaceLink rewrites the nodes along path from root so that it ends at
// to, and returns the new root.
func replaceLink(t *testing.T, s *MemStore, root cid.Cid, path []int, to cid.Cid) cid.Cid {
	t.Helper()
	pn, err := DecodePBNode(getData(t, s, root))
	if err != nil {
		t.Fatal(err)
	}
	links := slices.Clone(pn.Links)
	if len(path) == 1 {
		links[path[0]].Hash = to
	} else {
		links[path[0]].Hash = replaceLink(t, s, links[path[0]].Hash, path[1:], to)
	}
	nb := (&PBNode{Links: links, Data: pn.Data}).Marshal()
	nc := Sum(DagPB, nb)
	s.Put(context.Background(), nc, nb)
	return nc
}
