package mss

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// pair returns two connected ends with a deadline, over loopback TCP so
// that writes do not wait for reads.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	dl := time.Now().Add(10 * time.Second)
	a.SetDeadline(dl)
	b.SetDeadline(dl)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func supports(ps ...string) func(string) bool {
	return func(p string) bool {
		for _, x := range ps {
			if x == p {
				return true
			}
		}
		return false
	}
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		name     string
		propose  []string
		listener []string
		want     string
		err      error
	}{
		{"first", []string{"/a/1"}, []string{"/a/1", "/b/1"}, "/a/1", nil},
		{"fallback", []string{"/x/1", "/b/1"}, []string{"/a/1", "/b/1"}, "/b/1", nil},
		{"none", []string{"/x/1", "/y/1"}, []string{"/a/1"}, "", ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t)
			errc := make(chan error, 1)
			go func() {
				_, err := Negotiate(b, supports(tc.listener...), nil)
				if err != nil {
					b.Close()
				}
				errc <- err
			}()
			got, err := Select(a, tc.propose...)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("Select = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if tc.err == nil {
				if lerr := <-errc; lerr != nil {
					t.Fatal(lerr)
				}
			}
		})
	}
}

func TestLazy(t *testing.T) {
	a, b := pair(t)
	go func() {
		p, err := Negotiate(b, supports("/echo/1"), nil)
		if err != nil || p != "/echo/1" {
			b.Close()
			return
		}
		io.Copy(b, b)
	}()
	lz, err := SelectLazy(a, "/echo/1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lz.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(lz, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestLazyOneWrite checks that header, proposal and data leave in one write.
func TestLazyOneWrite(t *testing.T) {
	var w recorder
	lz, _ := SelectLazy(&w, "/p/1")
	lz.Write([]byte("data"))
	lz.Write([]byte("more"))
	want := string(AppendMessage(AppendMessage(nil, ProtocolID), "/p/1")) + "data"
	if len(w.writes) != 2 || w.writes[0] != want || w.writes[1] != "more" {
		t.Fatalf("writes = %q", w.writes)
	}
}

type recorder struct {
	writes []string
	bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestLazyRefused(t *testing.T) {
	a, b := pair(t)
	go Negotiate(b, supports(), nil)
	lz, _ := SelectLazy(a, "/nope/1")
	lz.Write([]byte("x"))
	if _, err := lz.Read(make([]byte, 1)); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("err = %v, want ErrNotSupported", err)
	}
}

func TestList(t *testing.T) {
	a, b := pair(t)
	go Negotiate(b, supports("/a/1"), func() []string { return []string{"/a/1", "/b/2"} })
	a.Write(AppendMessage(AppendMessage(nil, ProtocolID), "ls"))
	if h, err := ReadMessage(a); err != nil || h != ProtocolID {
		t.Fatalf("header %q %v", h, err)
	}
	msg, err := ReadMessage(a)
	if err != nil {
		t.Fatal(err)
	}
	list, err := ParseList(msg)
	if err != nil || strings.Join(list, ",") != "/a/1,/b/2" {
		t.Fatalf("list %q, %v", list, err)
	}
}

func TestBadInput(t *testing.T) {
	header := string(AppendMessage(nil, ProtocolID))
	for _, tc := range []struct {
		name string
		in   string
		err  error
	}{
		{"garbage", strings.Repeat("G", 200), ErrMalformed},
		{"oversized line", header + "\x81\x10" + strings.Repeat("a", 2049), ErrTooLarge},
		{"huge varint", header + "\xff\xff\xff\xff\x0f", ErrTooLarge},
		{"no newline", header + "\x03abc", ErrMalformed},
		{"wrong header", string(AppendMessage(nil, "/multistream/2.0.0")), ErrMalformed},
		{"eof", header, io.EOF},
		{"endless proposals", header + strings.Repeat(string(AppendMessage(nil, "/x")), 100), ErrTooManyProposals},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw := &fakeConn{r: strings.NewReader(tc.in)}
			_, err := Negotiate(rw, supports("/a"), nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

type fakeConn struct {
	r io.Reader
	w bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error) { return f.w.Write(p) }

func FuzzNegotiate(f *testing.F) {
	h := AppendMessage(nil, ProtocolID)
	f.Add(AppendMessage(h, "/a"))
	f.Add(AppendMessage(h, "ls"))
	f.Add(AppendMessage(AppendMessage(h, "na"), "/b"))
	f.Add([]byte{0x80, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		rw := &fakeConn{r: bytes.NewReader(in)}
		p, err := Negotiate(rw, supports("/a", "/b"), func() []string { return []string{"/a", "/b"} })
		if err == nil && p != "/a" && p != "/b" {
			t.Fatalf("negotiated %q", p)
		}
		if rw.w.Len() > (maxProposals+1)*(MaxMessage+8) {
			t.Fatalf("wrote %d bytes", rw.w.Len())
		}
	})
}

func FuzzLazyAnswer(f *testing.F) {
	h := AppendMessage(nil, ProtocolID)
	f.Add(AppendMessage(h, "/a"))
	f.Add(AppendMessage(h, "na"))
	f.Add([]byte("\x13/multistream/1.0.0"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rw := &fakeConn{r: bytes.NewReader(in)}
		lz, _ := SelectLazy(rw, "/a")
		_, err := lz.Read(make([]byte, 8))
		if err == nil && !bytes.HasPrefix(in, AppendMessage(h, "/a")) {
			t.Fatalf("accepted answer %q", in)
		}
	})
}

func FuzzParseList(f *testing.F) {
	f.Add("\x03/a\n\x03/b\n")
	f.Add("")
	f.Add("\x80")
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseList(s)
		if err == nil {
			var b []byte
			for _, p := range list {
				b = AppendMessage(b, p)
			}
			if string(b) != s {
				t.Fatalf("round trip %q -> %q", s, b)
			}
		}
	})
}
