package dag

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/ipfs/go-cid"
)

// fetch gets block c and verifies it against c.
func fetch(ctx context.Context, g BlockGetter, c cid.Cid) ([]byte, error) {
	return fetchInto(ctx, g, nil, c)
}

// fetchInto is fetch reusing buf's memory when g is a BlockAppender.
func fetchInto(ctx context.Context, g BlockGetter, buf []byte, c cid.Cid) ([]byte, error) {
	var data []byte
	var err error
	verified := false
	switch a := g.(type) {
	case VerifiedGetter:
		data, verified, err = a.GetVerified(ctx, c)
	case BlockAppender:
		if buf != nil {
			data, err = a.GetAppend(ctx, buf[:0], c)
		} else {
			data, err = g.Get(ctx, c)
		}
	default:
		data, err = g.Get(ctx, c)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", c, err)
	}
	if !verified {
		if err := Verify(c, data); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// fetchUnixFS fetches and verifies the dag-pb block c and decodes it with
// its UnixFS data.
func fetchUnixFS(ctx context.Context, g BlockGetter, c cid.Cid) (*PBNode, *UnixFS, error) {
	data, err := fetch(ctx, g, c)
	if err != nil {
		return nil, nil, err
	}
	return decodeUnixFSNode(c, data)
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
