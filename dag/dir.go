package dag

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
)

// Info describes one node, as Stat returns it.
type Info struct {
	Cid  cid.Cid
	Type Type // TypeFile for raw leaves and UnixFS Raw nodes too
	// Size is the content size: the file's bytes, the symlink target's
	// length, 0 for directories.
	Size uint64
	// BlockSize is the length of the node's own block.
	BlockSize int
	// CumulativeSize is the Tsize a link to this node carries: the block
	// plus the Tsizes its links claim.
	CumulativeSize uint64
	NumLinks       int
	// Target is a symlink's target.
	Target string
	// Mode is the UnixFS mode the node records (permissions with the
	// setuid, setgid and sticky bits: 07777), when HasMode; Mtime is the
	// modification time it records, the zero Time when none. Raw leaves
	// record neither.
	Mode    uint32
	HasMode bool
	Mtime   time.Time
}

// Stat fetches, verifies and describes the node c.
func Stat(ctx context.Context, g share.Getter, c cid.Cid) (Info, error) {
	b, err := fetch(ctx, g, c)
	if err != nil {
		return Info{}, err
	}
	return statBlock(c, b.Data)
}

func statBlock(c cid.Cid, data []byte) (Info, error) {
	info := Info{Cid: c, Type: TypeFile, Size: uint64(len(data)), BlockSize: len(data), CumulativeSize: uint64(len(data))}
	switch c.Type() {
	case Raw:
		return info, nil
	case DagPB:
	default:
		return Info{}, fmt.Errorf("block %s: %w codec %#x", c, ErrUnsupported, c.Type())
	}
	pn, fs, err := decodeUnixFSNode(c, data)
	if err != nil {
		return Info{}, err
	}
	info.Type, info.Size, info.NumLinks = fs.Type, 0, len(pn.Links)
	info.Mode, info.HasMode = fs.Mode, fs.HasMode
	if fs.Mtime != nil {
		info.Mtime = fs.Mtime.Time()
	}
	if fs.Type == TypeHAMTShard {
		info.Type = TypeDirectory // readers handle both kinds
	}
	for _, l := range pn.Links {
		info.CumulativeSize += l.Tsize
	}
	switch fs.Type {
	case TypeFile, TypeRaw:
		n, err := loadFileNode(c, data, -1)
		if err != nil {
			return Info{}, err
		}
		info.Type, info.Size = TypeFile, n.size
	case TypeSymlink:
		info.Size, info.Target = uint64(len(fs.Data)), string(fs.Data)
	}
	return info, nil
}

// DirEntry is one entry of a directory.
type DirEntry struct {
	Name  string
	Cid   cid.Cid
	Type  Type   // TypeFile, TypeDirectory or TypeSymlink (or another UnixFS type)
	Size  uint64 // as Info.Size
	Tsize uint64 // the cumulative DAG size the link records
	// Mode, HasMode and Mtime are the entry's metadata (Info's).
	Mode    uint32
	HasMode bool
	Mtime   time.Time
}

// ReadDir lists the directory c in link order (sorted by name for the
// directories this package writes; a HAMT-sharded directory's entries are
// gathered from all its shards and sorted by name). Each entry's type and
// size come from its own block, fetched and verified, except for raw
// leaves, which are files whose size is their Tsize. Entry names are
// checked: an empty name, ".", "..", or one with a slash or NUL is
// ErrInvalidNode.
func ReadDir(ctx context.Context, g share.Getter, c cid.Cid) ([]DirEntry, error) {
	links, err := dirLinks(ctx, g, c)
	if err != nil {
		return nil, err
	}
	ents := make([]DirEntry, len(links))
	errs := make([]error, len(links))
	sem := make(chan struct{}, readAhead)
	var wg sync.WaitGroup
	for i, l := range links {
		ents[i] = DirEntry{Name: l.Name, Cid: l.Hash, Type: TypeFile, Size: l.Tsize, Tsize: l.Tsize}
		if l.Hash.Type() == Raw {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			info, err := Stat(ctx, g, l.Hash)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", l.Name, err)
				return
			}
			ents[i].Type, ents[i].Size = info.Type, info.Size
			ents[i].Mode, ents[i].HasMode, ents[i].Mtime = info.Mode, info.HasMode, info.Mtime
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ents, nil
}

// dirLinks fetches the directory c and returns its links, names checked.
func dirLinks(ctx context.Context, g share.Getter, c cid.Cid) ([]PBLink, error) {
	if c.Type() != DagPB {
		return nil, fmt.Errorf("block %s: %w", c, ErrNotDir)
	}
	pn, fs, err := fetchUnixFS(ctx, g, c)
	if err != nil {
		return nil, err
	}
	switch fs.Type {
	case TypeDirectory:
	case TypeHAMTShard:
		return shardLinks(ctx, g, c, pn, fs)
	default:
		return nil, fmt.Errorf("block %s: %w: a %s", c, ErrNotDir, fs.Type)
	}
	for _, l := range pn.Links {
		if !validName(l.Name) {
			return nil, fmt.Errorf("block %s: %w: entry name %q", c, ErrInvalidNode, l.Name)
		}
	}
	return pn.Links, nil
}

// Lookup returns the entry called name of directory c, plain or
// HAMT-sharded (only the shards on the name's path are fetched). A name
// that is not there is ErrNoLink; c not being a directory is ErrNotDir.
func Lookup(ctx context.Context, g share.Getter, c cid.Cid, name string) (PBLink, error) {
	if c.Type() != DagPB {
		return PBLink{}, fmt.Errorf("block %s: %w", c, ErrNotDir)
	}
	pn, fs, err := fetchUnixFS(ctx, g, c)
	if err != nil {
		return PBLink{}, err
	}
	switch fs.Type {
	case TypeDirectory:
		for _, l := range pn.Links {
			if l.Name == name {
				return l, nil
			}
		}
		return PBLink{}, ErrNoLink
	case TypeHAMTShard:
		return shardLookup(ctx, g, c, pn, fs, name)
	}
	return PBLink{}, fmt.Errorf("block %s: %w: a %s", c, ErrNotDir, fs.Type)
}

// validName reports whether name is safe as one path component.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 || name[i] == '\\' {
			return false
		}
	}
	return true
}
