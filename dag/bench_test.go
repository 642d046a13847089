package dag

import (
	"context"
	"io"
	"testing"

	"github.com/share-p2p/share/chunker"
)

// loopReader is an endless stream copied from memory, like reading a file
// from the page cache.
type loopReader struct {
	src []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.src[l.off:])
	l.off = (l.off + n) % len(l.src)
	return n, nil
}

func BenchmarkSum(b *testing.B) {
	data := randBytes(1, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum(Raw, data)
	}
}

func BenchmarkVerify(b *testing.B) {
	data := randBytes(1, 1<<20)
	c := Sum(Raw, data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Verify(c, data); err != nil {
			b.Fatal(err)
		}
	}
}

// benchFormats are share's default and kubo's (CIDv0, sha2-256, dag-pb
// leaves in 256 KiB chunks).
var benchFormats = []struct {
	name string
	opts ImportOptions
}{
	{"share", ImportOptions{}},
	{"kubo", ImportOptions{Chunker: mustSpec(KuboChunkSize), Format: KuboDefault}},
}

func mustSpec(n int) chunker.Spec {
	s, err := chunker.FixedSize(n)
	if err != nil {
		panic(err)
	}
	return s
}

// BenchmarkImportFile measures the DAG builder on 256 MiB: reading from
// memory, hashing, building the tree, and a Put that stores nothing.
func BenchmarkImportFile(b *testing.B) {
	for _, f := range benchFormats {
		b.Run(f.name, func(b *testing.B) {
			const size = 256 << 20
			src := &loopReader{src: randBytes(2, 3<<20+1)}
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ImportFile(context.Background(), io.LimitReader(src, size), nullStore{}, f.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFileReaderWriteTo measures a sequential read of 256 MiB from a
// MemStore, every block verified.
func BenchmarkFileReaderWriteTo(b *testing.B) {
	for _, f := range benchFormats {
		b.Run(f.name, func(b *testing.B) {
			const size = 256 << 20
			s := NewMemStore()
			root, _, err := ImportFile(context.Background(), io.LimitReader(&loopReader{src: randBytes(2, 3<<20+1)}, size), s, f.opts)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				r, err := NewFileReader(context.Background(), s, root)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := r.WriteTo(io.Discard); err != nil || n != size {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// BenchmarkDecodePBNode decodes a full interior node of a file (174 links
// and its UnixFS data), as the reader does for every interior block.
func BenchmarkDecodePBNode(b *testing.B) {
	n := &PBNode{}
	u := &UnixFS{Type: TypeFile, FileSize: 174 << 20, HasFileSize: true}
	for i := range 174 {
		n.Links = append(n.Links, PBLink{Hash: Sum(Raw, []byte{byte(i), byte(i >> 8)}), Tsize: 1 << 20})
		u.BlockSizes = append(u.BlockSizes, 1<<20)
	}
	n.Data = u.Marshal()
	enc := n.Marshal()
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := DecodePBNode(enc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeUnixFS(d.Data); err != nil {
			b.Fatal(err)
		}
	}
}
