package rawio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	a, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// Much more than the socket buffers: writes and reads both meet EAGAIN
// and wait in the netpoller.
func TestConnMovesBytes(t *testing.T) {
	a, b := tcpPair(t)
	ra, rb := NewConn(a), NewConn(b)
	if ra == nil || rb == nil {
		t.Fatal("NewConn returned nil for a TCP connection")
	}
	data := make([]byte, 32<<20)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < len(data); off += 3 << 20 {
			if _, err := ra.Write(data[off:min(off+3<<20, len(data))]); err != nil {
				errc <- err
				return
			}
		}
		errc <- a.Close()
	}()
	var got bytes.Buffer
	buf := make([]byte, 200<<10)
	for {
		n, err := rb.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("received %d bytes that differ from the %d sent", got.Len(), len(data))
	}
}

func TestConnDeadlines(t *testing.T) {
	a, b := tcpPair(t)
	rb := NewConn(b)
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := rb.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want a deadline error", err)
	}
	ra := NewConn(a)
	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	big := make([]byte, 256<<20) // nobody reads: the buffers fill
	n, err := ra.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n >= len(big) {
		t.Fatalf("write past its deadline: %d bytes, %v; want some bytes and a deadline error", n, err)
	}
}

func TestConnClosed(t *testing.T) {
	a, _ := tcpPair(t)
	ra := NewConn(a)
	a.Close()
	if _, err := ra.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v", err)
	}
	if NewConn(struct{ io.Reader }{}) != nil {
		t.Fatal("NewConn of something without a descriptor is not nil")
	}
}

func TestFileReadWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 8<<20+123)
	rand.Read(data)
	if n, err := WriteFile(f.Fd(), data[:5<<20]); err != nil || n != 5<<20 {
		t.Fatal(n, err)
	}
	if n, err := WriteFile(f.Fd(), data[5<<20:]); err != nil || n != len(data)-5<<20 {
		t.Fatal(n, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Half of the file leaves the page cache: ReadAt must take the
	// cached part with RWF_NOWAIT and wait for the disk for the rest.
	if err := unix.Fadvise(int(f.Fd()), 4<<20, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data)-1000)
	if n, err := ReadAt(f.Fd(), got, 1000); err != nil || n != len(got) {
		t.Fatal(n, err)
	}
	if !bytes.Equal(got, data[1000:]) {
		t.Fatal("ReadAt returned other bytes than were written")
	}
	n, err := ReadAt(f.Fd(), make([]byte, 100), int64(len(data))-10)
	if n != 10 || err != io.EOF {
		t.Fatalf("read across the end: %d, %v; want 10, EOF", n, err)
	}
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := WriteFile(ro.Fd(), data[:10]); !errors.Is(err, unix.EBADF) {
		t.Fatalf("write to a read-only descriptor: %v, want EBADF", err)
	}
}

func BenchmarkReadAt(b *testing.B) {
	path := filepath.Join(b.TempDir(), "f")
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for _, mode := range []string{"raw", "os"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for i := 0; b.Loop(); i++ {
				off := int64(i%64) << 20
				var err error
				if mode == "raw" {
					_, err = ReadAt(f.Fd(), buf, off)
				} else {
					_, err = f.ReadAt(buf, off)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	size := func() int {
		n, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if size() >= PipeSize {
		t.Fatalf("a new pipe already holds %d bytes: the test cannot tell", size())
	}
	if !GrowPipe(w) || size() < PipeSize {
		t.Fatalf("pipe of %d bytes after GrowPipe, want %d", size(), PipeSize)
	}
	// Writes as large as the buffer now go through without a reader.
	if _, err := w.Write(make([]byte, PipeSize)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if GrowPipe(f) {
		t.Fatal("GrowPipe says a regular file is a pipe")
	}
}

func TestOutput(t *testing.T) {
	data := make([]byte, 5<<20+77)
	rand.Read(data)
	t.Run("pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(r)
			got <- b
		}()
		// 5 MiB into a 64 KiB pipe: raw writes until it is full, then
		// ordinary ones that wait for the reader.
		o := NewOutput(w)
		for off := 0; off < len(data); off += 1 << 20 {
			if n, err := o.Write(data[off:min(off+1<<20, len(data))]); err != nil || n != min(1<<20, len(data)-off) {
				t.Fatal(n, err)
			}
		}
		w.Close()
		if !bytes.Equal(<-got, data) {
			t.Fatal("the reader got other bytes")
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		o := NewOutput(f)
		if n, err := o.Write(data); err != nil || n != len(data) {
			t.Fatal(n, err)
		}
		f.Close()
		if b, _ := os.ReadFile(path); !bytes.Equal(b, data) {
			t.Fatal("the file holds other bytes")
		}
	})
	t.Run("broken pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		r.Close()
		if _, err := NewOutput(w).Write(data[:100]); !errors.Is(err, unix.EPIPE) {
			t.Fatalf("write into a pipe nobody reads: %v, want EPIPE", err)
		}
	})
}
