package dag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/internal/drop"
)

// WriteOptions tune WriteTo. The zero value is the default.
type WriteOptions struct {
	// Progress, if not nil, is called with the number of file bytes
	// written so far.
	Progress func(done uint64)
	// Links says which symlinks are written; the zero value is SafeLinks.
	Links LinkPolicy
	// Refused, if not nil, is called for each symlink that SafeLinks
	// does not write, with its path (under the output's name), its target
	// and why it is unsafe.
	Refused func(path, target, why string)
}

// LinkPolicy says which symlinks WriteTo writes.
type LinkPolicy int

const (
	// SafeLinks writes the symlinks whose target stays inside the output
	// and refuses the others (safeLink says which), as an archive
	// extractor does: a DAG from a stranger cannot plant a link to
	// ~/.ssh in what it writes.
	SafeLinks LinkPolicy = iota
	// AllLinks writes every symlink as the DAG has it.
	AllLinks
	// NoLinks writes no symlinks at all.
	NoLinks
)

// ErrUnsafeLink means WriteTo left out symlinks whose target is absolute
// or leads out of the output (kind errs.Invalid). The rest was written.
var ErrUnsafeLink = errs.New(errs.Invalid, "unsafe symlinks not written")

// WriteTo materialises the file, directory tree or symlink root at
// outPath. It builds everything under a temporary name beside outPath and
// renames it into place only on success, so outPath never holds a partial
// result. A file replaces whatever file outPath names; a directory or
// symlink must not exist yet (fs.ErrExist). The rename is not synced: the
// result is complete when it appears, but not necessarily durable.
//
// Files are created with mode 0644 and directories 0755, less the umask,
// unless the DAG records a mode: then its permission bits (0777), less the
// umask, as tar does for a user who is not root; setuid, setgid and sticky
// are never set. Recorded modification times are restored, a directory's
// once its contents are written. Symlinks are written as opts.Links says;
// when some were refused, the rest is written and WriteTo returns an error
// wrapping ErrUnsafeLink.
func WriteTo(ctx context.Context, g share.Getter, root cid.Cid, outPath string, opts WriteOptions) error {
	// The root block is fetched once: for a file, it is read from too.
	b, err := fetch(ctx, g, root)
	if err != nil {
		return err
	}
	info, err := statBlock(root, b.Data)
	if err != nil {
		return err
	}
	w := &writer{g: g, opts: opts, out: outPath}
	dir, base := filepath.Split(filepath.Clean(outPath))
	if dir == "" {
		dir = "."
	}
	if info.Type != TypeFile {
		if _, err := os.Lstat(outPath); err == nil {
			return fmt.Errorf("write %s: %w", outPath, fs.ErrExist)
		}
	}
	var tmp string
	switch info.Type {
	case TypeFile:
		var f *os.File
		tmp, err = tempName(dir, base, func(name string) (err error) {
			f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm(info))
			return err
		})
		if err == nil {
			w.tmp = tmp
			if err = w.fill(ctx, f, root, b); err == nil {
				err = w.setMtime(tmp, info)
			}
		}
	case TypeDirectory:
		tmp, err = tempName(dir, base, func(name string) error { return os.Mkdir(name, dirPerm(info)) })
		if err == nil {
			w.tmp = tmp
			w.pool = w.startPool(ctx)
			w.pool.fail(w.dir(w.pool.ctx, tmp, root, info))
			err = w.pool.close() // the first error, the walker's or a file's
		}
	case TypeSymlink:
		if err := w.linkAllowed(base, outPath, info.Target); err != nil {
			if errors.Is(err, errSkipLink) {
				return errs.E(errs.Invalid, err)
			}
			return err
		}
		tmp, err = tempName(dir, base, func(name string) error { return os.Symlink(info.Target, name) })
		if err == nil {
			err = w.setMtime(tmp, info)
		}
	default:
		return fmt.Errorf("block %s: %w: cannot write a %s", root, ErrUnsupported, info.Type)
	}
	if err == nil {
		err = os.Rename(tmp, outPath)
	}
	if err != nil && tmp != "" {
		os.RemoveAll(tmp)
	}
	if err == nil && w.refused > 0 {
		err = fmt.Errorf("write %s: %w: %d whose target is absolute or leads out of it", outPath, ErrUnsafeLink, w.refused)
	}
	return err
}

// tempName creates, with create, a new file beside the final one under a
// fresh hidden name, and returns that name. Its error names the final
// file: the temporary name means nothing to a user, and nothing is left
// under it.
func tempName(dir, base string, create func(name string) error) (string, error) {
	for range 100 {
		name := filepath.Join(dir, "."+base+".share-tmp-"+strconv.FormatUint(rand.Uint64(), 36))
		err := create(name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", &fs.PathError{Op: "create", Path: filepath.Join(dir, base), Err: cause(err)}
		}
		return name, nil
	}
	return "", fmt.Errorf("create temporary file in %s: too many collisions", dir)
}

// keepCached is how much of a file WriteTo leaves in the page cache: a
// small file (most of a directory tree) stays cached whole, a big one
// streams through to the disk (internal/drop).
const keepCached = 8 << 20

type writer struct {
	g       share.Getter
	opts    WriteOptions
	out     string    // the path the caller asked for
	tmp     string    // the temporary name it is built under
	refused int       // symlinks not written (SafeLinks; by the walker)
	pool    *filePool // writes a tree's small files; nil for one file

	mu   sync.Mutex // the pool's files report progress at once
	done uint64
}

// shown is how errors name path, a file under the temporary name: by the
// path it will have.
func (w *writer) shown(path string) string {
	if rel, ok := strings.CutPrefix(path, w.tmp); ok && w.tmp != "" {
		return w.out + rel
	}
	return path
}

// pathError is err, from an operation on path, naming path as shown.
func (w *writer) pathError(op, path string, err error) error {
	return &fs.PathError{Op: op, Path: w.shown(path), Err: cause(err)}
}

// cause is the error under an *fs.PathError or *os.LinkError: what
// happened, without the name it happened to.
func cause(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// fill copies the file c into f and closes f. b is c's block, fetched and
// verified, or the zero Block to fetch it here.
func (w *writer) fill(ctx context.Context, f *os.File, c cid.Cid, b share.Block) error {
	var r *FileReader
	var err error
	if b.Data == nil {
		r, err = NewFileReader(ctx, w.g, c)
	} else {
		r, err = newFileReader(ctx, w.g, c, b)
	}
	if err == nil {
		// A big file streams through to the disk rather than filling
		// the page cache (internal/drop); a small one stays cached.
		// Zero leaves become holes (holeWriter).
		dw := drop.NewFrom(f, keepCached)
		hw := &holeWriter{w: dw}
		var dst io.Writer = hw
		if w.opts.Progress != nil {
			dst = &progressWriter{w: dst, wr: w}
		}
		_, err = r.WriteTo(dst)
		if err == nil {
			err = hw.finish()
		}
		if cerr := dw.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", w.shown(f.Name()), err)
	}
	return nil
}

// dir writes the entries of directory c into the existing directory path,
// its small files through the pool, then, once they are written, gives
// it the mode and time info records. On an error it returns at once,
// leaving the files handed to the pool to the pool.
func (w *writer) dir(ctx context.Context, path string, c cid.Cid, info Info) error {
	links, err := dirLinks(ctx, w.g, c)
	if err != nil {
		return err
	}
	var files sync.WaitGroup
	for _, l := range links {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.entry(ctx, filepath.Join(path, l.Name), l.Hash, &files); err != nil {
			return err
		}
	}
	files.Wait()
	if err := w.pool.failed(); err != nil {
		return err
	}
	return w.finishDir(path, info)
}

// entry writes the entry c of a directory as path; files counts the
// directory's files handed to the pool.
func (w *writer) entry(ctx context.Context, path string, c cid.Cid, files *sync.WaitGroup) error {
	if c.Type() == Raw {
		// A raw leaf is a file: fetch it once, to write it (a getter that
		// streams a DAG hands each leaf over once; a Stat first would
		// take it and make fill fetch it again).
		return w.pool.submit(fileJob{path: path, c: c, dir: files})
	}
	// Likewise the block fetched to learn the entry's type is the one a
	// file is read from: a dag-pb leaf (kubo's) is fetched once too.
	b, err := fetch(ctx, w.g, c)
	if err != nil {
		return err
	}
	info, err := statBlock(c, b.Data)
	if err != nil {
		return err
	}
	switch info.Type {
	case TypeFile:
		if info.Size <= poolMaxSize {
			return w.pool.submit(fileJob{path: path, c: c, b: b, info: info, dir: files})
		}
		return w.create(ctx, path, c, b, info)
	case TypeDirectory:
		if err := os.Mkdir(path, dirPerm(info)); err != nil {
			return w.pathError("mkdir", path, err)
		}
		return w.dir(ctx, path, c, info)
	case TypeSymlink:
		return w.symlink(path, info)
	}
	return fmt.Errorf("block %s: %w: cannot write a %s", c, ErrUnsupported, info.Type)
}

// create writes the file c, described by info, as the new file path.
// O_EXCL: a DAG naming an entry twice cannot overwrite, and nothing is
// written through a symlink made earlier.
func (w *writer) create(ctx context.Context, path string, c cid.Cid, b share.Block, info Info) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm(info))
	if err != nil {
		return w.pathError("create", path, err)
	}
	if err := w.fill(ctx, f, c, b); err != nil {
		return err
	}
	return w.setMtime(path, info)
}

// symlink writes the symlink info describes as path, if the policy allows.
func (w *writer) symlink(path string, info Info) error {
	rel := filepath.ToSlash(strings.TrimPrefix(path, w.tmp+string(filepath.Separator)))
	if err := w.linkAllowed(rel, w.shown(path), info.Target); err != nil {
		if errors.Is(err, ErrUnsafeLink) || errors.Is(err, errSkipLink) {
			return nil // refused ones are counted: WriteTo says so at the end
		}
		return err
	}
	if err := os.Symlink(info.Target, path); err != nil {
		return w.pathError("symlink", path, err)
	}
	return w.setMtime(path, info)
}

type progressWriter struct {
	w  io.Writer
	wr *writer
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.wr.mu.Lock()
	p.wr.done += uint64(n)
	p.wr.opts.Progress(p.wr.done)
	p.wr.mu.Unlock()
	return n, err
}
