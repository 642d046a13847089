package dag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
)

// readAhead is how many blocks WriteTo fetches ahead of the writer.
const readAhead = 8

// FileReader reads the file whose DAG has a given root. Every block is
// verified against its CID before any of its bytes are used, so a corrupt
// or inconsistent DAG gives an error, never wrong bytes.
//
// Read, Seek and WriteTo share an offset and must not be called
// concurrently; ReadAt may be called from several goroutines. All of them
// use the context given to NewFileReader.
type FileReader struct {
	ctx  context.Context
	g    share.Getter
	root cid.Cid
	raw  []byte    // the content when the root is a raw leaf
	node *fileNode // the decoded root otherwise
	size uint64
	off  int64

	mu        sync.Mutex
	leafStart uint64 // the last segment read, for sequential Reads
	leaf      []byte
	nodes     map[cid.Cid]*fileNode // inner nodes recently descended through
}

// maxCachedNodes bounds the inner nodes a FileReader keeps; a path from
// the root to a leaf is a handful of nodes.
const maxCachedNodes = 32

// NewFileReader fetches and checks the root of a file DAG. It is an error
// wrapping ErrNotFile when root is a directory or a symlink.
func NewFileReader(ctx context.Context, g share.Getter, root cid.Cid) (*FileReader, error) {
	b, err := fetch(ctx, g, root)
	if err != nil {
		return nil, err
	}
	return newFileReader(ctx, g, root, b)
}

// newFileReader makes the reader of the file whose root block b, fetched
// and verified, is.
func newFileReader(ctx context.Context, g share.Getter, root cid.Cid, b share.Block) (*FileReader, error) {
	r := &FileReader{ctx: ctx, g: g, root: root, nodes: make(map[cid.Cid]*fileNode)}
	switch root.Type() {
	case Raw:
		r.raw, r.size = b.Data, uint64(len(b.Data))
	case DagPB:
		n, err := loadFileNode(root, b.Data, -1)
		if err != nil {
			return nil, err
		}
		r.node, r.size = n, n.size
	default:
		return nil, fmt.Errorf("block %s: %w codec %#x", root, ErrUnsupported, root.Type())
	}
	return r, nil
}

// Size returns the file size.
func (r *FileReader) Size() int64 { return int64(r.size) }

// Read reads from the current offset.
func (r *FileReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset for the next Read or WriteTo, as io.Seeker says.
func (r *FileReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += int64(r.size)
	default:
		return 0, errors.New("seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.off = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off, descending only into the blocks that
// hold them.
func (r *FileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("read: negative offset")
	}
	n := 0
	for n < len(p) {
		pos := uint64(off) + uint64(n)
		if pos >= r.size {
			return n, io.EOF
		}
		start, seg, err := r.segmentAt(pos)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], seg[pos-start:])
	}
	return n, nil
}

// segmentAt returns the leaf (or inline data) holding byte pos and where it
// starts in the file.
func (r *FileReader) segmentAt(pos uint64) (uint64, []byte, error) {
	if r.node == nil {
		return 0, r.raw, nil
	}
	r.mu.Lock()
	if pos >= r.leafStart && pos-r.leafStart < uint64(len(r.leaf)) {
		start, leaf := r.leafStart, r.leaf
		r.mu.Unlock()
		return start, leaf, nil
	}
	r.mu.Unlock()

	n, base := r.node, uint64(0)
	for {
		if pos-base < uint64(len(n.data)) {
			return r.remember(base, n.data)
		}
		base += uint64(len(n.data))
		i, start := n.childAt(pos - base)
		base += start
		c, size := n.links[i], n.ends[i]-start
		if c.Type() == DagPB {
			child, err := r.innerNode(c, size)
			if err != nil {
				return 0, nil, err
			}
			n = child
			continue
		}
		if c.Type() != Raw {
			return 0, nil, fmt.Errorf("block %s: %w codec %#x", c, ErrUnsupported, c.Type())
		}
		// The leaf is kept for the next Read, so it is not released.
		b, err := fetch(r.ctx, r.g, c)
		if err != nil {
			return 0, nil, err
		}
		if err := checkLeafSize(c, b.Data, size); err != nil {
			return 0, nil, err
		}
		return r.remember(base, b.Data)
	}
}

func (r *FileReader) remember(start uint64, seg []byte) (uint64, []byte, error) {
	r.mu.Lock()
	r.leafStart, r.leaf = start, seg
	r.mu.Unlock()
	return start, seg, nil
}

// innerNode returns the file node c, which its parent says holds size
// bytes, from the cache of verified nodes or else fetched and verified.
// Only nodes with links are cached.
func (r *FileReader) innerNode(c cid.Cid, size uint64) (*fileNode, error) {
	r.mu.Lock()
	n, ok := r.nodes[c]
	r.mu.Unlock()
	if ok {
		if n.size != size {
			return nil, fmt.Errorf("block %s: %w: %d bytes, parent says %d", c, ErrInvalidNode, n.size, size)
		}
		return n, nil
	}
	b, err := fetch(r.ctx, r.g, c)
	if err != nil {
		return nil, err
	}
	n, err = loadFileNode(c, b.Data, int64(size))
	if err != nil {
		return nil, err
	}
	if len(n.links) == 0 {
		// A dag-pb leaf: the caller reads its data once; caching it
		// would only evict the inner nodes.
		return n, nil
	}
	r.mu.Lock()
	if len(r.nodes) >= maxCachedNodes {
		clear(r.nodes)
	}
	r.nodes[c] = n
	r.mu.Unlock()
	return n, nil
}

// segment is a piece of the file on its way to WriteTo's writer: inline
// data, or a leaf being fetched.
type segment struct {
	c    cid.Cid
	size uint64 // bytes the parent says the leaf holds
	skip uint64 // bytes to drop at its start (the first segment only)
	blk  share.Block
	data []byte // the bytes: blk.Data for a raw leaf, inside it otherwise
	err  error
	done chan struct{} // closed once data or err is set
}

// WriteTo writes the file from the current offset to w and leaves the
// offset at the end. It fetches up to readAhead leaves concurrently ahead of
// the writer, so a sequential copy is not bound by one block's latency.
func (r *FileReader) WriteTo(w io.Writer) (int64, error) {
	if r.off >= int64(r.size) {
		return 0, nil
	}
	if r.node == nil {
		n, err := w.Write(r.raw[r.off:])
		r.off += int64(n)
		return int64(n), err
	}
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	segs := make(chan *segment, readAhead)
	var fetches sync.WaitGroup
	var prodErr error
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		defer close(segs)
		prodErr = r.produce(ctx, r.node, 0, uint64(r.off), segs, &fetches)
	}()

	var written int64
	var err error
	for s := range segs {
		if err != nil {
			continue // drain so the producer can stop
		}
		select {
		case <-s.done:
		case <-ctx.Done():
			err = ctx.Err()
			continue
		}
		if s.err != nil {
			err = s.err
			cancel()
			continue
		}
		n, werr := w.Write(s.data[s.skip:])
		// The getter recycles the buffer for the leaves still to come.
		s.blk.Release()
		written += int64(n)
		r.off += int64(n)
		if werr != nil {
			err = werr
			cancel()
		}
	}
	<-prodDone
	fetches.Wait()
	if err == nil {
		err = prodErr
	}
	return written, err
}

// produce sends, in file order, the segments of node n (whose content
// starts at base in the file) that hold bytes at or after from. Raw leaves
// are fetched in goroutines as they are sent; dag-pb children are fetched
// up to readAhead ahead, in goroutines too, but produce waits for each in
// turn: only its block says whether it is a leaf (kubo's dag-pb leaves) or
// an inner node whose links come next.
func (r *FileReader) produce(ctx context.Context, n *fileNode, base, from uint64, out chan<- *segment, fetches *sync.WaitGroup) error {
	if end := base + uint64(len(n.data)); from < end {
		s := &segment{data: n.data, skip: max(from, base) - base, done: make(chan struct{})}
		close(s.done)
		if err := send(ctx, out, s); err != nil {
			return err
		}
	}
	base += uint64(len(n.data))
	ahead := lookahead{r: r, n: n, base: base, from: from, fetches: fetches}
	for i, c := range n.links {
		start, end := base+n.start(i), base+n.ends[i]
		if end <= from || start == end {
			continue
		}
		switch c.Type() {
		case Raw:
			s := &segment{c: c, size: end - start, skip: max(from, start) - start, done: make(chan struct{})}
			fetches.Add(1)
			go func() {
				defer fetches.Done()
				defer close(s.done)
				s.blk, s.err = fetch(ctx, r.g, s.c)
				if s.err == nil {
					s.data, s.err = s.blk.Data, checkLeafSize(s.c, s.blk.Data, s.size)
				}
			}()
			if err := send(ctx, out, s); err != nil {
				return err
			}
		case DagPB:
			if err := r.producePB(ctx, ahead.wait(ctx, i), start, from, out, fetches); err != nil {
				return err
			}
		default:
			return fmt.Errorf("block %s: %w codec %#x", c, ErrUnsupported, c.Type())
		}
	}
	return nil
}

// producePB sends the segments of a fetched dag-pb child that starts at
// start: its data if it is a leaf, else its own children.
func (r *FileReader) producePB(ctx context.Context, ch *pbChild, start, from uint64, out chan<- *segment, fetches *sync.WaitGroup) error {
	if ch.err != nil {
		return ch.err
	}
	if len(ch.node.links) > 0 {
		// Its block stays with the node (inline data may alias it).
		return r.produce(ctx, ch.node, start, from, out, fetches)
	}
	s := &segment{blk: ch.blk, data: ch.node.data, skip: max(from, start) - start, done: make(chan struct{})}
	close(s.done)
	return send(ctx, out, s)
}

func send(ctx context.Context, out chan<- *segment, s *segment) error {
	select {
	case out <- s:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pbChild is a dag-pb child of a file node, fetched ahead of produce.
type pbChild struct {
	blk  share.Block
	node *fileNode
	err  error
	done chan struct{} // closed once node or err is set
}

// lookahead fetches the dag-pb children of one file node ahead of
// produce, at most readAhead at a time.
type lookahead struct {
	r       *FileReader
	n       *fileNode
	base    uint64 // where n's children start in the file
	from    uint64
	fetches *sync.WaitGroup
	next    int // links below next have been started (or skipped)
	started map[int]*pbChild
}

// wait starts the fetches of the dag-pb children from i up to readAhead
// ahead, then waits for child i.
func (a *lookahead) wait(ctx context.Context, i int) *pbChild {
	if a.started == nil {
		a.started = make(map[int]*pbChild, readAhead)
	}
	a.next = max(a.next, i)
	for ; a.next < len(a.n.links) && len(a.started) < readAhead; a.next++ {
		j := a.next
		start, end := a.base+a.n.start(j), a.base+a.n.ends[j]
		if a.n.links[j].Type() != DagPB || end <= a.from || start == end {
			continue
		}
		a.started[j] = a.start(ctx, a.n.links[j], end-start)
	}
	ch := a.started[i]
	delete(a.started, i)
	select {
	case <-ch.done:
	case <-ctx.Done():
		return &pbChild{err: ctx.Err()}
	}
	return ch
}

func (a *lookahead) start(ctx context.Context, c cid.Cid, size uint64) *pbChild {
	ch := &pbChild{done: make(chan struct{})}
	a.fetches.Add(1)
	go func() {
		defer a.fetches.Done()
		defer close(ch.done)
		ch.blk, ch.err = fetch(ctx, a.r.g, c)
		if ch.err == nil {
			ch.node, ch.err = loadFileNode(c, ch.blk.Data, int64(size))
		}
	}()
	return ch
}
