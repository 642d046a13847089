package dag

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/chunker"
)

// MaxLinks is the most links a file node of the balanced layout has.
const MaxLinks = 174

const (
	// inFlight bounds the chunks between reading and Put: memory use is
	// about inFlight chunk buffers, whatever the file size.
	inFlight = 8
	// hashers is the number of goroutines hashing chunks, so that reading
	// and hashing stay ahead of a Put that takes a core of its own.
	hashers = 2
)

// ImportOptions tune an import. The zero value is the default.
type ImportOptions struct {
	// Chunker says how files are split; the zero Spec is size-1048576.
	Chunker chunker.Spec
	// Format says how blocks and CIDs are made; the zero Format is
	// CIDv1, BLAKE3, raw leaves.
	Format Format
	// Progress, if not nil, is called after each chunk is stored with the
	// number of file bytes stored so far (summed over all files of an
	// ImportPath). It is called from one goroutine at a time.
	Progress func(done uint64)
}

// ImportFile splits r into chunks, stores the balanced DAG they form
// through p and returns its root and the file size. A file of one chunk is
// that chunk's leaf; an empty file is the empty leaf. Every child is Put
// before its parent.
func ImportFile(ctx context.Context, r io.Reader, p share.Putter, opts ImportOptions) (root cid.Cid, size uint64, err error) {
	if err := opts.Format.check(); err != nil {
		return cid.Undef, 0, err
	}
	im := newImporter(p, opts)
	e, err := im.file(ctx, r, fileMeta{})
	if err != nil {
		return cid.Undef, 0, err
	}
	return e.c, e.fsize, nil
}

// entry is a child about to be linked: its CID, the Tsize of its DAG and
// the number of file bytes it holds.
type entry struct {
	c     cid.Cid
	tsize uint64
	fsize uint64
}

// importer holds what the files of one import share: the putter, the
// options and the pool of chunk buffers.
type importer struct {
	put  share.Putter
	spec chunker.Spec
	fmt  Format
	prog func(uint64)
	done uint64

	free chan []byte // buffers not in use; capacity inFlight
	nbuf int         // buffers allocated so far, at most inFlight
}

func newImporter(p share.Putter, opts ImportOptions) *importer {
	return &importer{
		put:  p,
		spec: opts.Chunker,
		fmt:  opts.Format,
		prog: opts.Progress,
		free: make(chan []byte, inFlight),
	}
}

// chunkJob is one chunk on its way from the reader to Put.
type chunkJob struct {
	buf  []byte // the pooled buffer, returned once the chunk is stored
	data []byte // the leaf block: the chunk, or the dag-pb node around it
	size int    // the chunk's length
	c    cid.Cid
	done chan struct{} // closed once c is set
}

// file imports one stream. Three stages overlap: a goroutine reads chunks
// into pooled buffers, hashers compute their CIDs, and the calling
// goroutine stores them in order and builds the tree above them. meta goes
// into the root node.
func (im *importer) file(ctx context.Context, r io.Reader, meta fileMeta) (entry, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	jobs := make(chan *chunkJob, inFlight)
	order := make(chan *chunkJob, inFlight)
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1 + hashers)
	go func() {
		defer wg.Done()
		readErr = im.read(ctx, im.spec.New(r), jobs, order)
		close(jobs)
		close(order)
	}()
	codec := im.fmt.leafCodec()
	for range hashers {
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.c = im.fmt.sum(codec, j.data)
				close(j.done)
			}
		}()
	}

	b := balanced{put: im.put, fmt: im.fmt, meta: meta}
	var err error
	for j := range order {
		<-j.done
		if err == nil {
			err = im.store(ctx, &b, j)
			if err != nil {
				cancel() // stops the reader; the loop drains what it sent
			}
		}
		im.free <- j.buf
	}
	wg.Wait()
	if err == nil {
		err = readErr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return entry{}, err
	}
	return b.finish(ctx)
}

// read feeds chunks to the hashers and, in the same order, to the storer.
func (im *importer) read(ctx context.Context, ch chunker.Chunker, jobs, order chan<- *chunkJob) error {
	for {
		buf, err := im.buffer(ctx)
		if err != nil {
			return err
		}
		j, err := im.chunk(ch, buf)
		if err == io.EOF {
			im.free <- buf
			return nil
		}
		if err != nil {
			im.free <- buf
			return fmt.Errorf("read: %w", err)
		}
		// jobs first: the storer waits for j.done once it holds j.
		select {
		case jobs <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case order <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// chunk reads the next chunk into buf and makes its job: the chunk is the
// leaf block itself, or, for dag-pb leaves, wrapped in place in its node.
func (im *importer) chunk(ch chunker.Chunker, buf []byte) (*chunkJob, error) {
	if !im.fmt.DagPBLeaves {
		data, err := ch.Next(buf)
		if err != nil {
			return nil, err
		}
		return &chunkJob{buf: buf, data: data, size: len(data), done: make(chan struct{})}, nil
	}
	size := im.spec.MaxChunk()
	// The capacity stops the chunker from reading into the tail room.
	data, err := ch.Next(buf[leafHead : leafHead+size : leafHead+size])
	if err != nil {
		return nil, err
	}
	if &data[0] != &buf[leafHead] { // a chunker that used a buffer of its own
		copy(buf[leafHead:], data)
	}
	return &chunkJob{buf: buf, data: wrapLeaf(buf, len(data)), size: len(data), done: make(chan struct{})}, nil
}

// bufSize is the size of a chunk buffer: a chunk, with room around it for
// a dag-pb leaf's fields.
func (im *importer) bufSize() int {
	if im.fmt.DagPBLeaves {
		return leafHead + im.spec.MaxChunk() + leafTail
	}
	return im.spec.MaxChunk()
}

// buffer returns a free chunk buffer, allocating while fewer than inFlight
// exist and waiting for one to come back afterwards.
func (im *importer) buffer(ctx context.Context) ([]byte, error) {
	select {
	case b := <-im.free:
		return b, nil
	default:
	}
	if im.nbuf < inFlight {
		im.nbuf++
		return make([]byte, im.bufSize()), nil
	}
	select {
	case b := <-im.free:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// store puts one hashed chunk and links it into the tree.
func (im *importer) store(ctx context.Context, b *balanced, j *chunkJob) error {
	n := uint64(j.size)
	if err := b.leaf(ctx, entry{c: j.c, tsize: uint64(len(j.data)), fsize: n}, j.data); err != nil {
		return err
	}
	im.done += n
	if im.prog != nil {
		im.prog(im.done)
	}
	return nil
}

// balanced builds kubo's balanced layout while the leaves stream in.
// levels[0] collects leaves, levels[k] nodes of depth k. A level is turned
// into a node only when one more entry arrives for it (or at the end), which
// yields the same tree as kubo's recursive builder: full nodes filled left
// to right, the tree only as deep as needed, and a right spine that may
// hold nodes with a single child.
type balanced struct {
	put    share.Putter
	fmt    Format
	levels [][]entry
	sizes  []uint64 // scratch for blocksizes
	links  []PBLink // scratch for links

	// meta goes into the root. With it, the first leaf is held back
	// (copied) until a second one comes: a file of one chunk is that
	// leaf with the metadata added (kubo's), and the leaf alone is
	// never stored.
	meta     fileMeta
	held     []byte
	heldLeaf entry
}

// leaf stores the leaf block data of entry e and links it into the tree.
func (b *balanced) leaf(ctx context.Context, e entry, data []byte) error {
	if !b.meta.none() && len(b.levels) == 0 && b.held == nil {
		b.held, b.heldLeaf = bytes.Clone(data), e
		return nil
	}
	if b.held != nil {
		held := b.held
		b.held = nil
		if err := b.putLeaf(ctx, b.heldLeaf, held); err != nil {
			return err
		}
	}
	return b.putLeaf(ctx, e, data)
}

func (b *balanced) putLeaf(ctx context.Context, e entry, data []byte) error {
	if err := b.put.Put(ctx, e.c, data); err != nil {
		return fmt.Errorf("put %s: %w", e.c, err)
	}
	return b.add(ctx, e, 0)
}

func (b *balanced) add(ctx context.Context, e entry, level int) error {
	if level == len(b.levels) {
		b.levels = append(b.levels, make([]entry, 0, MaxLinks))
	}
	if len(b.levels[level]) == MaxLinks {
		n, err := b.flush(ctx, level, fileMeta{})
		if err != nil {
			return err
		}
		if err := b.add(ctx, n, level+1); err != nil {
			return err
		}
	}
	b.levels[level] = append(b.levels[level], e)
	return nil
}

// flush stores the node made of the entries of level, with meta, and
// empties it.
func (b *balanced) flush(ctx context.Context, level int, meta fileMeta) (entry, error) {
	es := b.levels[level]
	b.levels[level] = es[:0]
	b.sizes, b.links = b.sizes[:0], b.links[:0]
	var fsize, tsize uint64
	for _, e := range es {
		b.sizes = append(b.sizes, e.fsize)
		b.links = append(b.links, PBLink{Hash: e.c, Tsize: e.tsize})
		fsize += e.fsize
		tsize += e.tsize
	}
	fs := UnixFS{Type: TypeFile, FileSize: fsize, HasFileSize: true, BlockSizes: b.sizes}
	meta.set(&fs)
	e, err := b.node(ctx, &fs, b.links)
	e.tsize += tsize
	return e, err
}

// node stores the dag-pb node of fs and links; its entry's tsize is its
// block's length.
func (b *balanced) node(ctx context.Context, fs *UnixFS, links []PBLink) (entry, error) {
	n := PBNode{Links: links, Data: fs.Marshal()}
	blk := n.Marshal()
	c := b.fmt.sum(DagPB, blk)
	if err := b.put.Put(ctx, c, blk); err != nil {
		return entry{}, fmt.Errorf("put %s: %w", c, err)
	}
	return entry{c: c, tsize: uint64(len(blk)), fsize: fs.FileSize}, nil
}

// finish closes every level from the bottom up and returns the root,
// which carries the metadata.
func (b *balanced) finish(ctx context.Context) (entry, error) {
	switch {
	case b.held != nil: // one chunk, with metadata
		return b.metaLeaf(ctx)
	case len(b.levels) == 0: // empty file: the empty leaf
		if !b.meta.none() {
			fs := UnixFS{Type: TypeFile, HasFileSize: true}
			b.meta.set(&fs)
			return b.node(ctx, &fs, nil)
		}
		return b.emptyLeaf(ctx)
	}
	for k := 0; ; k++ {
		top := k == len(b.levels)-1
		if top && len(b.levels[k]) == 1 {
			return b.levels[k][0], nil // a leaf alone; without metadata
		}
		if top {
			return b.flush(ctx, k, b.meta)
		}
		n, err := b.flush(ctx, k, fileMeta{})
		if err != nil {
			return entry{}, err
		}
		if err := b.add(ctx, n, k+1); err != nil {
			return entry{}, err
		}
	}
}

// metaLeaf stores the held leaf, a dag-pb leaf, with the metadata added.
func (b *balanced) metaLeaf(ctx context.Context) (entry, error) {
	_, fs, err := decodeUnixFSNode(b.heldLeaf.c, b.held)
	if err != nil {
		return entry{}, err
	}
	b.meta.set(fs)
	return b.node(ctx, fs, nil)
}

// emptyLeaf stores the leaf of an empty file: the empty raw block, or a
// dag-pb File node with no data.
func (b *balanced) emptyLeaf(ctx context.Context) (entry, error) {
	blk := []byte{}
	if b.fmt.DagPBLeaves {
		blk = wrapLeaf(make([]byte, leafHead+leafTail), 0)
	}
	c := b.fmt.sum(b.fmt.leafCodec(), blk)
	if err := b.put.Put(ctx, c, blk); err != nil {
		return entry{}, fmt.Errorf("put %s: %w", c, err)
	}
	return entry{c: c, tsize: uint64(len(blk))}, nil
}
