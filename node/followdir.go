package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
)

// followState is what a follower remembers of a folder it keeps (keyspace
// 'F', by folder): the version it is at and what it wrote there, so that
// an update rewrites only what changed and never touches files that are
// not its own. Next is the version being written: set before an update
// starts, cleared when it ends, so that a crash in between leaves a
// record of every path the update may have written.
type followState struct {
	Name     string
	Root     string // the version DIR is at ("" before the first)
	Sequence uint64
	Value    string // the record's value that Root is of
	// Pinned is the root follow pinned ("" when a pin of the user's
	// holds it).
	Pinned   string               `json:",omitempty"`
	Files    map[string]pathState // by slash-separated path under DIR
	NextRoot string               `json:",omitempty"`
	Next     map[string]pathState `json:",omitempty"`
}

// pathState is one path a follower wrote: its CID and, for a file, the
// size and modification time it had once written (a different one means
// the user changed it; zero means unknown).
type pathState struct {
	Cid   string
	Dir   bool  `json:",omitempty"`
	Size  int64 `json:",omitempty"`
	Mtime int64 `json:",omitempty"` // Unix nanoseconds
}

// syncResult counts what an update did to a folder.
type syncResult struct {
	// Written counts files, symlinks and new folders; Unchanged the
	// files left as they were.
	Written, Removed, Unchanged int
	// Kept are paths left alone because they are the user's: files that
	// were not written by the follower, or that were changed since.
	Kept []string
}

// folderSync brings one folder to a new version.
type folderSync struct {
	g    share.Getter
	dir  string
	st   *followState
	next map[string]pathState // the new version's paths, as written
	res  syncResult
	// save persists st (the journal); afterWrite, in tests, runs after
	// each path written and may fail to simulate a crash.
	save       func(*followState) error
	afterWrite func(rel string) error
}

// listTree returns every path under the directory root (slash-separated,
// parents before children) with its CID and whether it is a directory.
func listTree(ctx context.Context, g share.Getter, root cid.Cid) (map[string]pathState, error) {
	info, err := dag.Stat(ctx, g, root)
	if err != nil {
		return nil, err
	}
	if info.Type != dag.TypeDirectory {
		return nil, errs.Errorf(errs.Invalid, "%s is a %s: only folders can be followed", root, info.Type)
	}
	out := map[string]pathState{}
	var walk func(rel string, c cid.Cid) error
	walk = func(rel string, c cid.Cid) error {
		ents, err := dag.ReadDir(ctx, g, c)
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := path.Join(rel, e.Name)
			out[p] = pathState{Cid: e.Cid.String(), Dir: e.Type == dag.TypeDirectory}
			if e.Type == dag.TypeDirectory {
				if err := walk(p, e.Cid); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk("", root)
}

// syncFolder brings s.dir to the version root (whose tree is tree): it
// writes new and changed paths (each file atomically, beside the old one
// then renamed over it), removes the paths of the previous version that
// the new one lacks, and leaves every path that is the user's. The
// journal (st.Next) is saved first and cleared last, so that a run cut
// short is finished by the next.
func (s *folderSync) syncFolder(ctx context.Context, root string, tree map[string]pathState) error {
	s.adoptUnfinished()
	s.st.NextRoot, s.st.Next = root, tree
	if err := s.save(s.st); err != nil {
		return err
	}
	// Removals first: a folder that becomes a file must be empty first.
	for _, rel := range sortedPaths(s.st.Files, true) {
		if _, ok := tree[rel]; !ok {
			s.remove(rel, s.st.Files[rel])
		}
	}
	s.next = make(map[string]pathState, len(tree))
	for _, rel := range sortedPaths(tree, false) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.put(ctx, rel, tree[rel]); err != nil {
			return err
		}
	}
	s.st.Root, s.st.Files, s.st.NextRoot, s.st.Next = root, s.next, "", nil
	return s.save(s.st)
}

// adoptUnfinished counts the paths an update cut short may have written
// as the follower's own, of unknown size and time (it cannot tell them
// from the user's changes), so that this run rewrites or removes them,
// and removes the temporary files it left.
func (s *folderSync) adoptUnfinished() {
	if s.st.Files == nil {
		s.st.Files = map[string]pathState{}
	}
	for rel, p := range s.st.Next {
		old, ok := s.st.Files[rel]
		if !ok || old.Cid != p.Cid {
			s.st.Files[rel] = pathState{Dir: p.Dir}
		}
	}
	s.removeTemporary()
}

// removeTemporary removes the temporary files (dag.WriteTo's
// ".NAME.share-tmp-*") of the paths an update cut short was writing.
func (s *folderSync) removeTemporary() {
	byDir := map[string]map[string]bool{}
	for rel, p := range s.st.Next {
		if !p.Dir {
			d := path.Dir(rel)
			if byDir[d] == nil {
				byDir[d] = map[string]bool{}
			}
			byDir[d][path.Base(rel)] = true
		}
	}
	for d, names := range byDir {
		full := filepath.Join(s.dir, filepath.FromSlash(d))
		ents, _ := os.ReadDir(full)
		for _, e := range ents {
			base, _, ok := strings.Cut(strings.TrimPrefix(e.Name(), "."), ".share-tmp-")
			if ok && strings.HasPrefix(e.Name(), ".") && names[base] {
				os.Remove(filepath.Join(full, e.Name()))
			}
		}
	}
}

// sortedPaths returns m's keys, parents first (or, reversed, children
// first, for removal).
func sortedPaths(m map[string]pathState, reverse bool) []string {
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	if reverse {
		slices.Reverse(out)
	}
	return out
}

// put makes rel hold p, unless it already does or it is the user's.
func (s *folderSync) put(ctx context.Context, rel string, p pathState) error {
	full := filepath.Join(s.dir, filepath.FromSlash(rel))
	if s.underKept(rel) {
		return nil
	}
	old, ours := s.st.Files[rel]
	fi, err := os.Lstat(full)
	exists := err == nil
	switch {
	case exists && !ours:
		s.keep(rel, fi)
		return nil
	case exists && p.Dir && fi.IsDir():
		s.next[rel] = p // a folder is not written: its contents are
		return nil
	case exists && old.Cid == p.Cid && !old.Dir && !p.Dir && !fi.IsDir():
		s.next[rel] = old
		s.res.Unchanged++
		return nil
	case exists && !old.Dir && changedByUser(old, fi):
		s.keep(rel, fi)
		return nil
	case exists && fi.IsDir() != p.Dir:
		// A file became a folder or a folder a file: the old one goes
		// first (a folder only when empty: what is left in it is the
		// user's).
		if err := os.Remove(full); err != nil {
			s.keep(rel, fi)
			return nil
		}
	}
	if err := s.write(ctx, full, rel, p); err != nil {
		return err
	}
	s.res.Written++
	if s.afterWrite != nil {
		return s.afterWrite(rel)
	}
	return nil
}

// write writes p at full and records what was written.
func (s *folderSync) write(ctx context.Context, full, rel string, p pathState) error {
	if p.Dir {
		if err := os.Mkdir(full, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("follow: %w", err)
		}
		s.next[rel] = p
		return nil
	}
	c, err := cid.Decode(p.Cid)
	if err != nil {
		return err
	}
	if err := dag.WriteTo(ctx, s.g, c, full, dag.WriteOptions{Links: dag.SafeLinks}); err != nil {
		if errors.Is(err, dag.ErrUnsafeLink) {
			s.res.Kept = append(s.res.Kept, rel+" (a symlink that leads out of the folder: not written)")
			return nil
		}
		return fmt.Errorf("follow: write %s: %w", rel, err)
	}
	fi, err := os.Lstat(full)
	if err != nil {
		return fmt.Errorf("follow: %w", err)
	}
	s.next[rel] = pathState{Cid: p.Cid, Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	return nil
}

// changedByUser reports whether the file fi is not as the follower wrote
// it.
func changedByUser(p pathState, fi fs.FileInfo) bool {
	if p.Size == 0 && p.Mtime == 0 {
		return false // unknown: written by an update cut short
	}
	return fi.IsDir() || fi.Size() != p.Size || fi.ModTime().UnixNano() != p.Mtime
}

// keep leaves the user's rel alone and says so.
func (s *folderSync) keep(rel string, fi fs.FileInfo) {
	why := "changed since it was written"
	if _, ours := s.st.Files[rel]; !ours {
		why = "not written by follow"
	}
	if fi != nil && fi.IsDir() {
		why = "a folder with files of yours"
	}
	s.res.Kept = append(s.res.Kept, rel+" ("+why+": left as it is)")
}

// underKept reports whether rel is inside a path kept as the user's, so
// that the new version's paths under it are not written.
func (s *folderSync) underKept(rel string) bool {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if p, ok := s.next[d]; !ok || !p.Dir {
			return true
		}
	}
	return false
}

// remove removes rel, a path of the previous version that the new one
// lacks, unless the user changed it (or, a folder, put files in it).
func (s *folderSync) remove(rel string, p pathState) {
	full := filepath.Join(s.dir, filepath.FromSlash(rel))
	fi, err := os.Lstat(full)
	if err != nil {
		return // gone already
	}
	if !p.Dir && changedByUser(p, fi) {
		s.keep(rel, fi)
		return
	}
	if err := os.Remove(full); err != nil {
		s.keep(rel, fi)
		return
	}
	s.res.Removed++
}
