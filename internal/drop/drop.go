// Package drop writes large files through to the disk as they grow and
// drops what is written from the page cache, so that a transfer of many
// GiB neither fills memory with dirty pages nor evicts the rest of the
// machine's cache ("drop-behind", as dd's oflag=nocache does).
//
// Every Chunk bytes the kernel is asked to start writing the new chunk
// back (sync_file_range SYNC_FILE_RANGE_WRITE, which does not wait); the
// chunk two behind it is by then on its way to the disk, and a goroutine
// of the Writer waits for it and drops its pages (posix_fadvise
// POSIX_FADV_DONTNEED). The page cache a Writer holds is thus bounded by a
// few chunks, and the pages it frees are reused by the next ones at once.
//
// That recycling is most of the gain: allocating page cache is cheap on
// bare metal, but on virtual machines whose free memory is handed back
// to the host (free page reporting, ballooning), every fresh page costs a
// fault in the hypervisor. Measured on the 2-core PVM guest we develop
// on: writing 1 GiB into fresh page cache cost 2.6 CPU-s of kernel time,
// through a Writer 0.22 CPU-s (BenchmarkWrite compares).
//
// The data is not made durable: call Sync for that, as with any file.
package drop

import (
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/share-p2p/share/internal/rawio"
)

// Chunk is the writeback unit. Larger chunks mean fewer system calls that
// wait for the disk, each of which the Go scheduler answers with a thread
// hand-off (and sysmon with a burst of wake-ups): 32 MiB chunks with
// 256 MiB fetch files, instead of 8 and 64, cut the getter's CPU time by a
// tenth (share cat of 1 GiB between loopback daemons, medians of 16
// alternating rounds: 1.81 instead of 2.02 CPU-s).
const Chunk = 32 << 20

// lag is how many chunks may wait for the background to settle them
// before Write waits: the page cache a Writer holds stays under
// (lag+3) chunks.
const lag = 2

// Writer writes sequentially to a file, dropping written pages behind it.
// The waiting for the disk happens on a goroutine of its own, so that a
// writer in a pipeline does not stall on it; Close stops it. It is not safe
// for concurrent use.
type Writer struct {
	f       *os.File
	off     int64 // bytes written
	started int64 // writeback started up to here
	queued  int64 // handed to the background up to here
	jobs    chan int64
	done    chan struct{}
	keep    bool // NewWriteback: start writeback, drop nothing
	chunk   int64
}

// New returns a Writer appending to f at its start (f must be empty or
// positioned at offset 0). Close it before closing f.
func New(f *os.File) *Writer { return &Writer{f: f, chunk: Chunk} }

// NewFrom returns a Writer that leaves the first from bytes in the page
// cache and drops only what follows.
func NewFrom(f *os.File, from int64) *Writer {
	return newFrom(f, from, Chunk)
}

func newFrom(f *os.File, from, chunk int64) *Writer {
	from = from / chunk * chunk
	return &Writer{f: f, started: from, queued: from, chunk: chunk}
}

// NewWriteback returns a Writer that only starts writeback every 8 MiB
// and keeps every page cached: a file to be fsynced and read soon, whose
// final fsync then has little left to do.
func NewWriteback(f *os.File) *Writer { return &Writer{f: f, keep: true, chunk: writebackChunk} }

// writebackChunk is NewWriteback's unit: smaller than Chunk, so that the
// fsync that follows (share add) finds at most 8 MiB not yet on its way.
const writebackChunk = 8 << 20

// Write writes p to the file.
func (w *Writer) Write(p []byte) (int, error) {
	// A regular file: the write is a copy into the page cache, made as a
	// raw system call (internal/rawio).
	n, err := rawio.WriteFile(w.f.Fd(), p)
	if err != nil {
		err = &os.PathError{Op: "write", Path: w.f.Name(), Err: err}
	}
	w.off += int64(n)
	if err != nil {
		return n, err
	}
	w.advance()
	return n, nil
}

// Skip moves the file offset n bytes on without writing, leaving a hole
// that reads as zeros. A file that ends in a hole needs a Truncate to its
// final size: a hole past the last byte written is not part of the file.
func (w *Writer) Skip(n int64) error {
	if _, err := unix.Seek(int(w.f.Fd()), n, io.SeekCurrent); err != nil {
		return &os.PathError{Op: "seek", Path: w.f.Name(), Err: err}
	}
	w.off += n
	w.advance()
	return nil
}

func (w *Writer) advance() {
	fd := int(w.f.Fd())
	for w.off-w.started >= w.chunk {
		_ = unix.SyncFileRange(fd, w.started, w.chunk, unix.SYNC_FILE_RANGE_WRITE)
		w.started += w.chunk
		// Keep two chunks in flight; the background settles the one
		// before them.
		for !w.keep && w.started-w.queued > 2*w.chunk {
			if w.jobs == nil {
				w.jobs = make(chan int64, lag)
				w.done = make(chan struct{})
				go w.settle(fd)
			}
			w.jobs <- w.queued
			w.queued += w.chunk
		}
	}
}

// settle waits for each queued chunk to reach the disk and drops it.
func (w *Writer) settle(fd int) {
	defer close(w.done)
	for off := range w.jobs {
		_ = unix.SyncFileRange(fd, off, w.chunk,
			unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		_ = unix.Fadvise(fd, off, w.chunk, unix.FADV_DONTNEED)
	}
}

// Close waits for the background to finish; it does not close the file.
func (w *Writer) Close() error {
	if w.jobs != nil {
		close(w.jobs)
		<-w.done
		w.jobs = nil
	}
	return nil
}

// All drops the pages of f from the page cache, as far as they are
// clean (written back); errors are ignored, the cache being only a cache.
func All(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// Resident returns how many bytes of f are in the page cache.
func Resident(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(m)
	pg := os.Getpagesize()
	vec := make([]byte, (len(m)+pg-1)/pg)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return 0, e
	}
	var n int64
	for _, v := range vec {
		n += int64(v & 1)
	}
	return n * int64(pg), nil
}

// File returns the file w writes to.
func (w *Writer) File() *os.File { return w.f }

// Offset returns the number of bytes written.
func (w *Writer) Offset() int64 { return w.off }
