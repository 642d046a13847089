// Package rawio makes the system calls of the bulk data path without
// telling the Go scheduler, for calls that run on the CPU (a copy into or
// out of the page cache or a loopback socket buffer) rather than wait.
//
// A call made the usual way hands its P to the scheduler, and once it has
// run for a sysmon tick (20 µs) sysmon may give that P to another thread.
// On a busy machine every 1 MiB write or read is that long, so sysmon
// never backs off from its 20 µs period and each of its wake-ups, and each
// hand-off, is a context switch: on our PVM guest they cost the getter and
// the provider about a tenth of their CPU. A raw call keeps its P; it must
// therefore never block: sockets are non-blocking (EAGAIN goes back to the
// netpoller through syscall.RawConn) and regular-file reads and writes are
// copies. fsync, sync_file_range and the like stay ordinary calls.
package rawio

import (
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn reads and writes a non-blocking socket with raw system calls,
// waiting in the netpoller (deadlines apply) when it would block.
type Conn struct {
	rc syscall.RawConn
}

// NewConn returns a Conn for c, or nil if c has no file descriptor.
func NewConn(c any) *Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &Conn{rc: rc}
}

// Read reads into p like net.Conn.Read.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case 0:
				n = int(r)
				if n == 0 {
					rerr = io.EOF
				}
				return true
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			default:
				rerr = e
				return true
			}
		}
	})
	if err != nil {
		return n, err
	}
	return n, rerr
}

// Write writes all of p like net.Conn.Write.
func (c *Conn) Write(p []byte) (int, error) {
	var n int
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		m, e := writeAll(fd, p[n:])
		n += m
		if e == syscall.EAGAIN {
			return false
		}
		if e != 0 {
			werr = e
		}
		return true
	})
	if err != nil {
		return n, err
	}
	return n, werr
}

// writeAll writes p with raw write(2) calls until all of it is written or
// one fails (EINTR aside).
func writeAll(fd uintptr, p []byte) (int, syscall.Errno) {
	n := 0
	for n < len(p) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return n, e
		}
		n += int(r)
	}
	return n, 0
}

// ReadAt reads len(p) bytes at off from a regular file, like
// os.File.ReadAt. What is in the page cache is read with raw calls
// (preadv2 with RWF_NOWAIT, which never waits for the disk); the rest, if
// any, with ordinary ones, which may wait.
func ReadAt(fd uintptr, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		r, err := preadNoWait(fd, p[n:], off+int64(n))
		if err != nil {
			// Not cached (EAGAIN), or RWF_NOWAIT unsupported here.
			r, err = syscall.Pread(int(fd), p[n:], off+int64(n))
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return n, err
			}
		}
		if r == 0 {
			return n, io.EOF
		}
		n += r
	}
	return n, nil
}

func preadNoWait(fd uintptr, p []byte, off int64) (int, error) {
	return noWait(unix.SYS_PREADV2, fd, p, off)
}

// noWait makes one preadv2 or pwritev2 (trap) of p at off with RWF_NOWAIT.
// The offset goes in two halves (a 64-bit kernel ignores the second).
func noWait(trap, fd uintptr, p []byte, off int64) (int, error) {
	iov := syscall.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	for {
		r, _, e := syscall.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(&iov)), 1, uintptr(off), uintptr(uint64(off)>>32), unix.RWF_NOWAIT)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// WriteFile writes all of p to a regular file at its current offset.
func WriteFile(fd uintptr, p []byte) (int, error) {
	n, e := writeAll(fd, p)
	if e != 0 {
		return n, e
	}
	return n, nil
}

// PipeSize is the buffer GrowPipe asks for: Linux's default limit for
// unprivileged processes (/proc/sys/fs/pipe-max-size).
const PipeSize = 1 << 20

// GrowPipe enlarges f's buffer to PipeSize if f is a pipe with a smaller
// one, and reports whether it is now that large. Writing a large file into
// a pipe of the default 64 KiB wakes the reader, and waits for it, every
// 64 KiB; with 1 MiB both sides work in longer stretches (share cat of
// 1 GiB from a loopback peer into a pipe: 2.3-2.7 s instead of 2.9-3.8 s).
// A refusal (a user over their pipe quota) leaves the pipe as it was.
func GrowPipe(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		if n, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil && n >= PipeSize {
			ok = true
			return
		}
		_, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, PipeSize)
		ok = err == nil
	})
	return ok
}

// Output writes to a descriptor that may block, such as standard output
// (a pipe, a terminal, /dev/null, a file): as raw calls that do not wait
// (pwritev2 with RWF_NOWAIT) while they succeed, as ordinary ones when they
// would wait (a full pipe) or where RWF_NOWAIT is not supported.
type Output struct {
	f      *os.File
	fd     uintptr
	noWait bool
}

// NewOutput returns an Output writing to f.
func NewOutput(f *os.File) *Output {
	o := &Output{f: f, noWait: true}
	rc, err := f.SyscallConn()
	if err != nil {
		o.noWait = false
		return o
	}
	rc.Control(func(fd uintptr) { o.fd = fd })
	return o
}

// Write writes all of p.
func (o *Output) Write(p []byte) (int, error) {
	n := 0
	for o.noWait && n < len(p) {
		r, err := pwriteNoWait(o.fd, p[n:])
		if err == syscall.EAGAIN {
			break // full: wait the ordinary way
		}
		if err == syscall.EOPNOTSUPP || err == syscall.EINVAL || err == syscall.ENOSYS {
			o.noWait = false
			break
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: o.f.Name(), Err: err}
		}
		n += r
	}
	if n == len(p) {
		return n, nil
	}
	m, err := o.f.Write(p[n:])
	return n + m, err
}

func pwriteNoWait(fd uintptr, p []byte) (int, error) {
	return noWait(unix.SYS_PWRITEV2, fd, p, -1) // -1: at the file's position, like write(2)
}
