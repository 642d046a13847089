package node

import (
	"context"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
)

// Resolve returns the CID that p names. The directories on the way are
// read through the fetcher's on-demand getter: from the blockstore, and
// those that are not here from the network (they stay cached, unpinned);
// the content p names is left to the command that reads it (Cat, Get,
// PinAdd), which fetches its DAG alone. A bare CID resolves to itself
// without a read. A path of an IPNS name (/ipns/NAME/a) resolves the name
// first (ResolveName), then the rest from the CID it points at.
func (n *Node) Resolve(ctx context.Context, p dag.Path, opts FetchOptions) (cid.Cid, error) {
	if p.Name != "" {
		var err error
		if p, _, err = n.ResolvePath(ctx, p); err != nil {
			return cid.Undef, err
		}
	}
	if len(p.Segments) == 0 {
		return p.Root, nil
	}
	g := n.fetcher.Getter(ctx, opts)
	defer g.Close()
	return dag.Resolve(ctx, g, p)
}
