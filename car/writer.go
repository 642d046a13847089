package car

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-varint"

	"github.com/share-p2p/share/dag"
)

// Writer writes a CAR v1 file: the header at NewWriter, then one section
// per Put. It buffers; call Flush at the end.
type Writer struct {
	w   *bufio.Writer
	buf [varint.MaxLenUvarint63]byte
}

// NewWriter writes the header naming roots to w and returns a Writer for
// the blocks.
func NewWriter(w io.Writer, roots ...cid.Cid) (*Writer, error) {
	cw := &Writer{w: bufio.NewWriterSize(w, 64<<10)}
	h := encodeHeader(roots)
	n := varint.PutUvarint(cw.buf[:], uint64(len(h)))
	if _, err := cw.w.Write(cw.buf[:n]); err != nil {
		return nil, err
	}
	if _, err := cw.w.Write(h); err != nil {
		return nil, err
	}
	return cw, nil
}

// Put writes the section of block c. It does not check data against c.
// With Put, a Writer is a dag.BlockPutter.
func (w *Writer) Put(_ context.Context, c cid.Cid, data []byte) error {
	cb := c.Bytes()
	n := varint.PutUvarint(w.buf[:], uint64(len(cb)+len(data)))
	if _, err := w.w.Write(w.buf[:n]); err != nil {
		return err
	}
	if _, err := w.w.Write(cb); err != nil {
		return err
	}
	_, err := w.w.Write(data)
	return err
}

// Flush writes any buffered data to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

// Write writes a CAR file holding the DAGs under roots, fetched from g:
// the header naming roots, then each distinct block once, in the order of
// dag.Walk (depth first, parents before children, links in order), root
// after root. Every block is verified against its CID before it is
// written, so a corrupt store cannot export a corrupt file. On error the
// output is incomplete and must be discarded.
func Write(ctx context.Context, w io.Writer, g dag.BlockGetter, roots ...cid.Cid) error {
	if len(roots) == 0 {
		return errors.New("car: write: no roots")
	}
	cw, err := NewWriter(w, roots...)
	if err != nil {
		return fmt.Errorf("car: write: %w", err)
	}
	// Walk fetches each dag-pb node right after calling its callback, which
	// has just fetched it to write it: lastGetter hands it back the same
	// bytes, so no block is fetched twice.
	lg := &lastGetter{g: g}
	seen := make(map[cid.Cid]struct{})
	for _, root := range roots {
		err := dag.Walk(ctx, lg, root, dag.WalkOptions{}, func(c cid.Cid) error {
			if _, ok := seen[c]; ok {
				return dag.SkipNode
			}
			seen[c] = struct{}{}
			data, err := g.Get(ctx, c)
			if err != nil {
				return fmt.Errorf("get %s: %w", c, err)
			}
			if err := dag.Verify(c, data); err != nil {
				return err
			}
			if c.Type() != dag.Raw {
				lg.c, lg.data = c, data
			}
			if err := cw.Put(ctx, c, data); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("car: %w", err)
		}
	}
	if err := cw.Flush(); err != nil {
		return fmt.Errorf("car: write: %w", err)
	}
	return nil
}

// lastGetter serves the block last written from memory and forwards other
// requests.
type lastGetter struct {
	g    dag.BlockGetter
	c    cid.Cid
	data []byte
}

func (l *lastGetter) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if l.data != nil && c == l.c {
		data := l.data
		l.c, l.data = cid.Undef, nil
		return data, nil
	}
	return l.g.Get(ctx, c)
}
