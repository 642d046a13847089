package dag

import (
	"io/fs"
	"time"
)

// fileMeta is the UnixFS 1.5 metadata an import puts in a root node: what
// Format.PreserveMode and PreserveMtime ask for, as kubo stores it.
type fileMeta struct {
	mode    uint32
	hasMode bool
	mtime   *UnixTime
}

// metaOf is the metadata f stores for a file, directory or symlink of fi.
// As kubo does, a symlink gets no mode (its permissions mean nothing), and
// a mode keeps the setuid, setgid and sticky bits (st_mode & 07777).
func (f Format) metaOf(fi fs.FileInfo) fileMeta {
	var m fileMeta
	if f.PreserveMode && fi.Mode()&fs.ModeSymlink == 0 {
		m.mode, m.hasMode = unixMode(fi.Mode()), true
	}
	if f.PreserveMtime {
		t := fi.ModTime()
		m.mtime = &UnixTime{Seconds: t.Unix(), Nanos: uint32(t.Nanosecond()), HasNanos: t.Nanosecond() != 0}
	}
	return m
}

func (m fileMeta) none() bool { return !m.hasMode && m.mtime == nil }

// set puts m into u.
func (m fileMeta) set(u *UnixFS) {
	u.Mode, u.HasMode, u.Mtime = m.mode, m.hasMode, m.mtime
}

// unixMode is the Unix st_mode permission bits of m (07777).
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// Time is the modification time t records.
func (t *UnixTime) Time() time.Time { return time.Unix(t.Seconds, int64(t.Nanos)).UTC() }
