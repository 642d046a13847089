package dag

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
)

// fetch gets block c, verified against c unless the getter has done so
// already. The caller releases the block once it holds no reference to its
// bytes (or leaves it to the garbage collector).
func fetch(ctx context.Context, g share.Getter, c cid.Cid) (share.Block, error) {
	b, err := g.Get(ctx, c)
	if err != nil {
		return share.Block{}, errs.E("get", c, err)
	}
	if !b.Verified {
		if err := Verify(c, b.Data); err != nil {
			b.Release()
			return share.Block{}, err
		}
	}
	return b, nil
}

// fetchUnixFS fetches and verifies the dag-pb block c and decodes it with
// its UnixFS data.
func fetchUnixFS(ctx context.Context, g share.Getter, c cid.Cid) (*PBNode, *UnixFS, error) {
	b, err := fetch(ctx, g, c)
	if err != nil {
		return nil, nil, err
	}
	return decodeUnixFSNode(c, b.Data)
}

// decodeUnixFSNode decodes a verified dag-pb block and its UnixFS data.
func decodeUnixFSNode(c cid.Cid, data []byte) (*PBNode, *UnixFS, error) {
	pn, err := DecodePBNode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("block %s: %w", c, err)
	}
	if pn.Data == nil {
		return nil, nil, fmt.Errorf("block %s: %w: no UnixFS data", c, ErrInvalidNode)
	}
	fs, err := DecodeUnixFS(pn.Data)
	if err != nil {
		return nil, nil, fmt.Errorf("block %s: %w", c, err)
	}
	return pn, fs, nil
}

// fileNode is a decoded UnixFS file node: inline data followed by children.
type fileNode struct {
	data  []byte
	links []cid.Cid
	ends  []uint64 // ends[i]: offset, after data, where child i's bytes end
	size  uint64   // len(data) + sum of blocksizes
}

// childAt returns the index of the child holding byte rel (counted after
// the inline data) and the offset where that child starts.
func (n *fileNode) childAt(rel uint64) (int, uint64) {
	i := sort.Search(len(n.ends), func(i int) bool { return n.ends[i] > rel })
	return i, n.start(i)
}

func (n *fileNode) start(i int) uint64 {
	if i == 0 {
		return 0
	}
	return n.ends[i-1]
}

// loadFileNode makes a fileNode of a verified dag-pb block. want is the
// size its parent promises, or -1 for a root.
func loadFileNode(c cid.Cid, data []byte, want int64) (*fileNode, error) {
	pn, fs, err := decodeUnixFSNode(c, data)
	if err != nil {
		return nil, err
	}
	switch fs.Type {
	case TypeFile, TypeRaw:
	case TypeDirectory, TypeHAMTShard:
		return nil, fmt.Errorf("block %s: %w: a directory", c, ErrNotFile)
	default:
		return nil, fmt.Errorf("block %s: %w: a %s", c, ErrNotFile, fs.Type)
	}
	if len(fs.BlockSizes) != len(pn.Links) {
		return nil, fmt.Errorf("block %s: %w: %d links but %d blocksizes", c, ErrInvalidNode, len(pn.Links), len(fs.BlockSizes))
	}
	n := &fileNode{data: fs.Data, links: make([]cid.Cid, len(pn.Links)), ends: make([]uint64, len(pn.Links))}
	var total uint64
	for i, l := range pn.Links {
		n.links[i] = l.Hash
		total += fs.BlockSizes[i]
		if total < fs.BlockSizes[i] {
			return nil, fmt.Errorf("block %s: %w: sizes overflow", c, ErrInvalidNode)
		}
		n.ends[i] = total
	}
	n.size = total + uint64(len(fs.Data))
	if n.size < total || n.size > math.MaxInt64 || fs.HasFileSize && fs.FileSize != n.size {
		return nil, fmt.Errorf("block %s: %w: filesize %d, content %d bytes", c, ErrInvalidNode, fs.FileSize, n.size)
	}
	if want >= 0 && uint64(want) != n.size {
		return nil, fmt.Errorf("block %s: %w: %d bytes, parent says %d", c, ErrInvalidNode, n.size, want)
	}
	return n, nil
}

// checkLeafSize checks a raw leaf against the size its parent promises.
func checkLeafSize(c cid.Cid, data []byte, want uint64) error {
	if uint64(len(data)) != want {
		return fmt.Errorf("block %s: %w: %d bytes, parent says %d", c, ErrInvalidNode, len(data), want)
	}
	return nil
}
