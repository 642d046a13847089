package blockstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/share-p2p/share/errs"
)

// ErrNoSpace is returned when the disk that holds the store is too full to
// take more blocks. Nothing is half-written: the store stays consistent and
// accepts writes again once space is freed. The errors that wrap it say
// why, and have kind errs.NoSpace.
var ErrNoSpace = errors.New("no space left on device")

// spaceReserve is the free space blocks may never use: Pebble needs room for
// its WAL, flushes and manifest, and at ENOSPC it retries its flushes
// forever while writers stall (seen on a full tmpfs), so the store refuses
// blocks before the disk fills.
const spaceReserve = 32 << 20

// checkSpace fails with ErrNoSpace unless n more bytes fit on the disk with
// the reserve left over. statfs is cheap, but to keep it off the hot path it
// runs at most every 50 ms or every 16 MiB written.
func (s *Store) checkSpace(n int) error {
	if s.readOnly {
		return errs.Errorf(errs.NoSpace, "%w: the repository was opened read-only because %s was full", ErrNoSpace, s.dir)
	}
	s.spaceMu.Lock()
	defer s.spaceMu.Unlock()
	s.spaceUsed += int64(n)
	if time.Since(s.spaceAt) < 50*time.Millisecond && s.spaceUsed < 16<<20 && s.spaceFree-s.spaceUsed > spaceReserve {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return nil // cannot tell: let the write itself fail
	}
	s.spaceFree = int64(st.Bavail) * int64(st.Bsize)
	s.spaceAt, s.spaceUsed = time.Now(), int64(n)
	if s.spaceFree-int64(n) < spaceReserve {
		return errs.Errorf(errs.NoSpace, "%w: %d MiB free in %s, of which the store keeps %d MiB for itself", ErrNoSpace, s.spaceFree>>20, s.dir, spaceReserve>>20)
	}
	return nil
}

// minOpenFree is the free space below which Open opens read-only.
const minOpenFree = 16 << 20

// freeSpace returns the bytes available to us on dir's filesystem.
func freeSpace(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

// writable fails with ErrNoSpace when the store was opened read-only on a
// full disk.
func (s *Store) writable() error {
	if s.readOnly {
		return errs.Errorf(errs.NoSpace, "%w: the repository was opened read-only because %s was full; free space outside it and run again", ErrNoSpace, s.dir)
	}
	return nil
}

// diskUsage returns the bytes allocated on disk to the files under dir, as
// du counts them (st_blocks, so a sparse or preallocated file counts what
// it holds). A file removed during the walk (Pebble deletes obsolete
// files at any time) is skipped.
func diskUsage(dir string) (uint64, error) {
	var total uint64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		switch err := syscall.Lstat(p, &st); {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		total += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("blockstore: disk usage: %w", err)
	}
	return total, nil
}
