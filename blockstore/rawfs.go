package blockstore

import (
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/share-p2p/share/internal/rawio"
)

// rawReadFS is vfs.Default whose files opened for reading read with raw
// system calls (see internal/rawio): a provider reads every block it
// serves with one pread of about 1 MiB, long enough for the scheduler to
// hand its P away each time.
type rawReadFS struct{ vfs.FS }

func (fs rawReadFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil || f.Fd() == vfs.InvalidFd {
		return f, err
	}
	return rawReadFile{f}, nil
}

func (fs rawReadFS) Unwrap() vfs.FS { return fs.FS }

type rawReadFile struct{ vfs.File }

func (f rawReadFile) ReadAt(p []byte, off int64) (int, error) {
	return rawio.ReadAt(f.Fd(), p, off)
}
