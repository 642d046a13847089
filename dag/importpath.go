package dag

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
)

// ImportPath imports the file, directory tree or symlink at name and
// returns the root CID. Regular files become balanced file DAGs,
// directories UnixFS Directory nodes whose links are sorted by name (hidden
// entries included; above ShardThreshold, HAMT-sharded directories as kubo
// writes them), and symlinks, never followed (name itself included),
// UnixFS Symlink nodes whose Data is the link target. Other kinds of file
// (devices, sockets, pipes) are an error.
//
// onEntry, if not nil, is called for every file, symlink and directory once
// it is stored, children before their directory, with its path made of the
// base name of name followed by slash-separated components ("tree",
// "tree/sub/z.txt"), and its content size in bytes: a file's length, a
// symlink target's, the sum of a directory's entries'.
func ImportPath(ctx context.Context, name string, p share.Putter, opts ImportOptions, onEntry func(c cid.Cid, relPath string, size uint64)) (cid.Cid, error) {
	if err := opts.Format.check(); err != nil {
		return cid.Undef, err
	}
	fi, err := os.Lstat(name)
	if err != nil {
		return cid.Undef, err
	}
	im := newImporter(p, opts)
	base := filepath.Base(filepath.Clean(name))
	e, err := im.path(ctx, name, base, fi, onEntry)
	if err != nil {
		return cid.Undef, err
	}
	return e.c, nil
}

func (im *importer) path(ctx context.Context, name, rel string, fi os.FileInfo, onEntry func(cid.Cid, string, uint64)) (entry, error) {
	if err := ctx.Err(); err != nil {
		return entry{}, err
	}
	var e entry
	var err error
	mode, meta := fi.Mode(), im.fmt.metaOf(fi)
	switch {
	case mode.IsRegular():
		e, err = im.osFile(ctx, name, meta)
	case mode.IsDir():
		e, err = im.dir(ctx, name, rel, meta, onEntry)
	case mode&os.ModeSymlink != 0:
		e, err = im.symlink(ctx, name, meta)
	default:
		return entry{}, fmt.Errorf("import %s: unsupported file type %s", name, mode.Type())
	}
	if err != nil {
		return entry{}, err
	}
	if onEntry != nil {
		onEntry(e.c, rel, e.fsize)
	}
	return e, nil
}

func (im *importer) osFile(ctx context.Context, name string, meta fileMeta) (entry, error) {
	f, err := os.Open(name)
	if err != nil {
		return entry{}, err
	}
	defer f.Close()
	e, err := im.file(ctx, f, meta)
	if err != nil {
		return entry{}, fmt.Errorf("import %s: %w", name, err)
	}
	return e, nil
}

func (im *importer) dir(ctx context.Context, name, rel string, meta fileMeta, onEntry func(cid.Cid, string, uint64)) (entry, error) {
	des, err := os.ReadDir(name)
	if err != nil {
		return entry{}, err
	}
	// os.ReadDir sorts by name already; dag-pb wants byte order, which is
	// what strings.Compare gives.
	slices.SortFunc(des, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	links := make([]PBLink, 0, len(des))
	var fsize uint64 // the content under the directory, for onEntry
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			return entry{}, err
		}
		child := filepath.Join(name, de.Name())
		ce, err := im.path(ctx, child, path.Join(rel, de.Name()), info, onEntry)
		if err != nil {
			return entry{}, err
		}
		links = append(links, PBLink{Hash: ce.c, Name: de.Name(), Tsize: ce.tsize})
		fsize += ce.fsize
	}
	e, err := im.directory(ctx, links, meta)
	e.fsize = fsize
	return e, err
}

// directory stores the directory whose entries are links, sorted by name:
// one Directory node, or a HAMT when the links are too many for one
// (needsShard). meta goes into the root node.
func (im *importer) directory(ctx context.Context, links []PBLink, meta fileMeta) (entry, error) {
	if needsShard(links) {
		return im.hamt(ctx, links, meta)
	}
	var tsize uint64
	for _, l := range links {
		tsize += l.Tsize
	}
	fs := UnixFS{Type: TypeDirectory}
	meta.set(&fs)
	return im.node(ctx, &PBNode{Links: links, Data: fs.Marshal()}, tsize)
}

func (im *importer) symlink(ctx context.Context, name string, meta fileMeta) (entry, error) {
	target, err := os.Readlink(name)
	if err != nil {
		return entry{}, err
	}
	fs := UnixFS{Type: TypeSymlink, Data: append([]byte{}, target...)}
	meta.set(&fs)
	e, err := im.node(ctx, &PBNode{Data: fs.Marshal()}, 0)
	e.fsize = uint64(len(target)) // as lstat gives a link's size
	return e, err
}

// node stores a dag-pb node whose children's Tsizes sum to childTsize.
func (im *importer) node(ctx context.Context, n *PBNode, childTsize uint64) (entry, error) {
	blk := n.Marshal()
	c := im.fmt.sum(DagPB, blk)
	if err := im.put.Put(ctx, c, blk); err != nil {
		return entry{}, fmt.Errorf("put %s: %w", c, err)
	}
	return entry{c: c, tsize: childTsize + uint64(len(blk))}, nil
}
