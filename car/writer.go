package car

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-varint"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
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
// With Put, a Writer is a share.Putter.
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

// readAhead is how many blocks Write fetches ahead of the output.
const readAhead = 8

// Write writes a CAR file holding the DAGs under roots, fetched from g:
// the header naming roots, then each distinct block once, in the order of
// dag.Walk (depth first, parents before children, links in order), root
// after root. Leaves are fetched up to readAhead ahead of the output, so a
// getter that fetches from the network is not waited on one block at a
// time. Every block is verified against its CID before it is written, so
// a corrupt store cannot export a corrupt file. On error the output is
// incomplete and must be discarded.
func Write(ctx context.Context, w io.Writer, g share.Getter, roots ...cid.Cid) error {
	if len(roots) == 0 {
		return errors.New("car: write: no roots")
	}
	cw, err := NewWriter(w, roots...)
	if err != nil {
		return fmt.Errorf("car: write: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan *pending, readAhead)
	werr := make(chan error, 1)
	go func() { werr <- drain(ctx, queue, cw, cancel) }()

	walkErr := walk(ctx, g, roots, queue)
	close(queue)
	if err := <-werr; err != nil {
		return fmt.Errorf("car: %w", err)
	}
	if walkErr != nil {
		return fmt.Errorf("car: %w", walkErr)
	}
	if err := cw.Flush(); err != nil {
		return fmt.Errorf("car: write: %w", err)
	}
	return nil
}

// pending is a block on its way to the output.
type pending struct {
	c    cid.Cid
	blk  share.Block
	err  error
	done chan struct{} // closed once blk or err is set
}

// walk sends the blocks under roots to queue in walk order. Inner nodes are
// fetched here, since the walk needs their links; leaves are fetched in
// goroutines, at most one per queue slot plus one.
func walk(ctx context.Context, g share.Getter, roots []cid.Cid, queue chan<- *pending) error {
	// Walk fetches each dag-pb node right after calling the callback, which
	// has just fetched it: lastGetter hands it back the same bytes, so no
	// block is fetched twice.
	lg := &lastGetter{g: g}
	seen := make(map[cid.Cid]struct{})
	for _, root := range roots {
		err := dag.Walk(ctx, lg, root, dag.WalkOptions{}, func(c cid.Cid) error {
			if _, ok := seen[c]; ok {
				return dag.SkipNode
			}
			seen[c] = struct{}{}
			p := &pending{c: c, done: make(chan struct{})}
			if c.Type() == dag.Raw {
				go func() {
					defer close(p.done)
					p.blk, p.err = fetch(ctx, g, c)
				}()
			} else {
				p.blk, p.err = fetch(ctx, g, c)
				close(p.done)
				if p.err != nil {
					return p.err
				}
				lg.c, lg.data = c, p.blk.Data
			}
			select {
			case queue <- p:
				return nil
			case <-ctx.Done():
				<-p.done
				return ctx.Err()
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// drain writes the queued blocks in order. On the first error it cancels
// the walk and keeps draining so that no fetch is left waiting.
func drain(ctx context.Context, queue <-chan *pending, cw *Writer, cancel context.CancelFunc) error {
	var err error
	for p := range queue {
		<-p.done
		if err != nil {
			continue
		}
		err = p.err
		if err == nil {
			if err = cw.Put(ctx, p.c, p.blk.Data); err != nil {
				err = fmt.Errorf("write: %w", err)
			}
		}
		if p.c.Type() == dag.Raw {
			// An inner node's bytes are the walk's too (lastGetter).
			p.blk.Release()
		}
		if err != nil {
			cancel()
		}
	}
	return err
}

// fetch gets block c, verified.
func fetch(ctx context.Context, g share.Getter, c cid.Cid) (share.Block, error) {
	b, err := g.Get(ctx, c)
	if err != nil {
		return share.Block{}, errs.E("get", c, err)
	}
	if !b.Verified {
		if err := dag.Verify(c, b.Data); err != nil {
			b.Release()
			return share.Block{}, err
		}
	}
	return b, nil
}

// lastGetter serves the inner node last fetched, already verified, from
// memory and forwards other requests. The node is the output's to release,
// not the walk's.
type lastGetter struct {
	g    share.Getter
	c    cid.Cid
	data []byte
}

func (l *lastGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	if l.data != nil && c == l.c {
		data := l.data
		l.c, l.data = cid.Undef, nil
		return share.NewBlock(data, true, nil), nil
	}
	return l.g.Get(ctx, c)
}

func (l *lastGetter) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return l.g.Has(ctx, c)
}
