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
)

// Reader reads the blocks of a CAR v1 file in order, verifying each one.
type Reader struct {
	r      *bufio.Reader
	header Header
	n      int // sections read
	err    error
}

// NewReader reads and checks the header of the CAR file r.
func NewReader(r io.Reader) (*Reader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 64<<10 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	n, err := varint.ReadUvarint(br)
	if err != nil {
		return nil, lengthError("header", err)
	}
	if n == 0 || n > MaxHeaderSize {
		return nil, malformedf("header of %d bytes (limit %d)", n, MaxHeaderSize)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, truncated("header", err)
	}
	h, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	return &Reader{r: br, header: h}, nil
}

// Header returns the file's header.
func (r *Reader) Header() Header { return r.header }

// Next returns the next block and its CID, verified: bytes that do not
// hash to the CID are an error wrapping dag.ErrHashMismatch that names the
// CID, a hash function dag cannot verify is dag.ErrUnsupported. At the end
// of the file Next returns io.EOF. The returned slice is the caller's.
// After an error, Next keeps returning it.
func (r *Reader) Next() (cid.Cid, []byte, error) {
	if r.err != nil {
		return cid.Undef, nil, r.err
	}
	c, data, err := r.next()
	if err != nil {
		r.err = err
		return cid.Undef, nil, err
	}
	r.n++
	return c, data, nil
}

func (r *Reader) next() (cid.Cid, []byte, error) {
	what := fmt.Sprintf("section %d", r.n+1)
	n, err := varint.ReadUvarint(r.r)
	if err == io.EOF {
		return cid.Undef, nil, io.EOF
	}
	if err != nil {
		return cid.Undef, nil, lengthError(what, err)
	}
	if n > maxSectionSize {
		return cid.Undef, nil, malformedf("%s: %d bytes (limit %d)", what, n, maxSectionSize)
	}
	sect := make([]byte, n)
	if _, err := io.ReadFull(r.r, sect); err != nil {
		return cid.Undef, nil, truncated(what, err)
	}
	cl, c, err := cid.CidFromBytes(sect[:min(len(sect), MaxCIDSize)])
	if err != nil {
		return cid.Undef, nil, malformedf("%s: CID: %v", what, err)
	}
	data := sect[cl:]
	if len(data) > MaxBlockSize {
		return cid.Undef, nil, malformedf("%s: block %s of %d bytes (limit %d)", what, c, len(data), MaxBlockSize)
	}
	if err := dag.Verify(c, data); err != nil {
		return cid.Undef, nil, fmt.Errorf("car: %s: %w", what, err)
	}
	return c, data, nil
}

func lengthError(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return truncated(what, err)
	}
	return malformedf("%s: length: %v", what, err)
}

func truncated(what string, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("car: %w: %s: truncated: %w", ErrMalformed, what, err)
	}
	return fmt.Errorf("car: %s: %w", what, err)
}

// Import reads the CAR file r and stores each of its blocks, verified,
// through p, returning the header's roots. It does not check that the
// roots' DAGs are complete. With a blockstore.Batch as p, the caller
// commits the batch after Import returns.
func Import(ctx context.Context, r io.Reader, p share.Putter) ([]cid.Cid, error) {
	cr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, data, err := cr.Next()
		if err == io.EOF {
			return cr.Header().Roots, nil
		}
		if err != nil {
			return nil, err
		}
		if err := p.Put(ctx, c, data); err != nil {
			return nil, fmt.Errorf("car: put %s: %w", c, err)
		}
	}
}
