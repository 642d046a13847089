package node

import (
	"context"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/car"
	"github.com/share-p2p/share/pin"
)

// Export writes the DAG under c as a CAR v1 file to w, fetching what is
// missing first.
func (n *Node) Export(ctx context.Context, c cid.Cid, w io.Writer, opts FetchOptions) error {
	return n.fetcher.Have(ctx, c, opts, func(g share.Getter) error {
		return car.Write(ctx, w, g, c)
	})
}

// Import stores every block of a CAR v1 stream, each verified against its
// CID, and (with pinRoots) pins its roots once their DAGs are complete.
// Nothing is pinned unless the whole file was read and stored.
func (n *Node) Import(ctx context.Context, r io.Reader, pinRoots bool) ([]cid.Cid, error) {
	unlock := n.GCLock.Writer()
	defer unlock()
	batch := n.Blocks.NewBatch()
	defer batch.Close()
	roots, err := car.Import(ctx, r, batch)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if err := batch.Commit(ctx); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	n.invalidateStat()
	if !pinRoots {
		return roots, nil
	}
	for _, root := range roots {
		if err := pin.Complete(ctx, n.local(), root, pin.Recursive); err != nil {
			return roots, fmt.Errorf("import: root %s is incomplete in this CAR file, not pinned: %w", root, err)
		}
		if err := n.Pins.Add(ctx, root, pin.Recursive, ""); err != nil {
			return roots, err
		}
	}
	return roots, nil
}
