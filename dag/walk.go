package dag

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
)

// SkipNode, returned by a Walk callback, skips the children of the node
// just visited (a caller that has already marked that subtree, say).
var SkipNode = errors.New("skip node")

// WalkOptions tune Walk. The zero value visits every CID, fetching and
// verifying the dag-pb nodes but not the raw leaves.
type WalkOptions struct {
	// VerifyLeaves fetches and verifies raw leaves too.
	VerifyLeaves bool
	// CheckLeaves checks with Has that raw leaves are present. A missing
	// leaf is an error of kind errs.NotFound.
	CheckLeaves bool
}

// Walk calls fn for every distinct CID of the DAG rooted at root, parents
// before children, children in link order. fn runs before the node's block
// is fetched; returning SkipNode skips its children, any other error stops
// the walk. Raw leaves have no children and are not fetched unless opts
// say so.
func Walk(ctx context.Context, g share.Getter, root cid.Cid, opts WalkOptions, fn func(c cid.Cid) error) error {
	w := walker{g: g, opts: opts, fn: fn, seen: make(map[cid.Cid]struct{})}
	return w.walk(ctx, root)
}

type walker struct {
	g    share.Getter
	opts WalkOptions
	fn   func(cid.Cid) error
	seen map[cid.Cid]struct{}
}

func (w *walker) walk(ctx context.Context, c cid.Cid) error {
	if _, ok := w.seen[c]; ok {
		return nil
	}
	w.seen[c] = struct{}{}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.fn(c); err != nil {
		if err == SkipNode {
			return nil
		}
		return err
	}
	if c.Type() == Raw {
		return w.leaf(ctx, c)
	}
	b, err := fetch(ctx, w.g, c)
	if err != nil {
		return err
	}
	links, err := Links(c, b.Data)
	b.Release() // the links are copies
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := w.walk(ctx, l.Hash); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) leaf(ctx context.Context, c cid.Cid) error {
	switch {
	case w.opts.VerifyLeaves:
		b, err := fetch(ctx, w.g, c)
		b.Release()
		return err
	case w.opts.CheckLeaves:
		ok, err := w.g.Has(ctx, c)
		if err != nil {
			return errs.E("has", c, err)
		}
		if !ok {
			return notFound(c)
		}
	}
	return nil
}

// Links returns the links of block data, whose CID is c: none for a raw
// leaf, the decoded links of a dag-pb node. Other codecs are
// ErrUnsupported. It does not verify data against c.
func Links(c cid.Cid, data []byte) ([]PBLink, error) {
	switch c.Type() {
	case Raw:
		return nil, nil
	case DagPB:
		pn, err := DecodePBNode(data)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", c, err)
		}
		return pn.Links, nil
	}
	return nil, fmt.Errorf("block %s: %w codec %#x", c, ErrUnsupported, c.Type())
}
