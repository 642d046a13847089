package dag

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// filePerm is the mode a file described by info is created with (less the
// umask): its recorded permission bits, or 0644.
func filePerm(info Info) os.FileMode {
	if info.HasMode {
		return os.FileMode(info.Mode & 0o777)
	}
	return 0o644
}

// dirPerm is the mode a directory is created with (less the umask): its
// recorded permission bits, or 0755, with the owner's rwx added so that
// its contents can be written; finishDir takes away what was added.
func dirPerm(info Info) os.FileMode {
	if info.HasMode {
		return os.FileMode(info.Mode&0o777 | 0o700)
	}
	return 0o755
}

// finishDir gives the directory path, its contents written, the mode and
// time info records: the owner bits dirPerm added are taken away, and the
// time is set last, as writing the contents changed it.
func (w *writer) finishDir(path string, info Info) error {
	if extra := os.FileMode(0o700 &^ info.Mode); info.HasMode && extra != 0 {
		fi, err := os.Lstat(path)
		if err == nil {
			err = os.Chmod(path, fi.Mode().Perm()&^extra)
		}
		if err != nil {
			return w.pathError("chmod", path, err)
		}
	}
	return w.setMtime(path, info)
}

// setMtime sets the modification time of path (a symlink itself, not
// what it points to) to the one info records, if any; the access time is
// left alone.
func (w *writer) setMtime(path string, info Info) error {
	if info.Mtime.IsZero() {
		return nil
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(info.Mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return w.pathError("set time of", path, err)
	}
	return nil
}

// errSkipLink is linkAllowed's answer for a symlink NoLinks leaves out.
var errSkipLink = errors.New("symlinks are not written")

// linkAllowed says whether the symlink at rel (slash-separated, from the
// directory the output is written in for a root symlink, from the output
// itself otherwise) to target is written: nil, errSkipLink, or, for a link
// SafeLinks refuses, an error wrapping ErrUnsafeLink (then the link is
// reported to opts.Refused under the name shown, and counted).
func (w *writer) linkAllowed(rel, shown, target string) error {
	switch w.opts.Links {
	case AllLinks:
		return nil
	case NoLinks:
		return fmt.Errorf("write %s: it is a symlink: %w", shown, errSkipLink)
	}
	why := unsafeLink(rel, target)
	if why == "" {
		return nil
	}
	w.refused++
	if w.opts.Refused != nil {
		w.opts.Refused(shown, target, why)
	}
	return fmt.Errorf("symlink %s -> %s: %w: %s", shown, target, ErrUnsafeLink, why)
}

// unsafeLink says why the symlink at rel to target could lead out of the
// tree it is written in, or "" if it cannot. Resolved lexically from the
// link's directory, the target must stay inside; it must not be absolute;
// and ".." may only come before names (../a, not a/../b), since a name
// before it could be a symlink itself, which ".." would then climb out of
// however the path reads.
func unsafeLink(rel, target string) string {
	if target == "" {
		return "its target is empty"
	}
	if path.IsAbs(target) {
		return "its target is absolute"
	}
	named := false
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if named {
				return "its target has .. after a name"
			}
		default:
			named = true
		}
	}
	if p := path.Join(path.Dir(rel), target); p == ".." || strings.HasPrefix(p, "../") {
		return "its target leads out of the output"
	}
	return ""
}
