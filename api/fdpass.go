package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync"
	"syscall"

	"github.com/ipfs/go-cid"
	"golang.org/x/sys/unix"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/internal/rawio"
	"github.com/share-p2p/share/node"
)

// Passing the output file descriptor.
//
// `share cat CID > FILE` (or `| prog`) through a daemon used to move every
// byte twice more: daemon to CLI over the socket, then CLI to its stdout.
// Instead the CLI sends its stdout descriptor with the request (SCM_RIGHTS
// on the request's first bytes, POST /v0/cat?fd=1) and the daemon writes
// the file straight into it, then answers {"Bytes": n} or an error. The
// socket is mode 0600, so only the daemon's own user can hand it a file;
// the daemon only ever writes to a descriptor it was given.

// fdListener wraps the accepted unix connections so that the first read of
// each one also receives a descriptor sent along.
type fdListener struct{ net.Listener }

func (l fdListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if uc, ok := c.(*net.UnixConn); ok {
		return &fdConn{UnixConn: uc}, nil
	}
	return c, nil
}

// fdConn is a server-side connection that looks for one descriptor in the
// ancillary data of its first read.
type fdConn struct {
	*net.UnixConn
	mu    sync.Mutex
	first bool // the first read happened
	file  *os.File
}

func (c *fdConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if c.first {
		c.mu.Unlock()
		return c.UnixConn.Read(b)
	}
	c.first = true
	c.mu.Unlock()
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(b, oob)
	if oobn > 0 {
		c.keep(oob[:oobn])
	}
	return n, err
}

// keep takes the first descriptor of the control messages and closes any
// other (a client sends exactly one).
func (c *fdConn) keep(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	var fds []int
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	for i, fd := range fds {
		if i > 0 {
			unix.Close(fd)
			continue
		}
		unix.CloseOnExec(fd)
		c.mu.Lock()
		c.file = os.NewFile(uintptr(fd), "client output")
		c.mu.Unlock()
	}
}

// takeFile returns the descriptor sent with the request, once.
func (c *fdConn) takeFile() *os.File {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.file
	c.file = nil
	return f
}

func (c *fdConn) Close() error {
	if f := c.takeFile(); f != nil {
		f.Close()
	}
	return c.UnixConn.Close()
}

type connKey struct{}

// connContext remembers the connection of a request, for takeFile.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*fdConn); ok {
		return context.WithValue(ctx, connKey{}, fc)
	}
	return ctx
}

// errCodeHeader carries an errno the client should see as such.
const errCodeHeader = "Share-Errno"

// catFD serves POST /v0/cat?fd=1: the file goes into the descriptor that
// came with the request.
func (s *Server) catFD(w http.ResponseWriter, r *http.Request, c cid.Cid) {
	fc, _ := r.Context().Value(connKey{}).(*fdConn)
	var f *os.File
	if fc != nil {
		f = fc.takeFile()
	}
	if f == nil {
		WriteError(w, errs.New(errs.Invalid, "cat: no file descriptor came with the request"))
		return
	}
	defer f.Close()
	n, err := s.api.Cat(r.Context(), c, rawio.NewOutput(f), fetchOptions(r, nil))
	if err != nil {
		if errors.Is(err, syscall.EPIPE) {
			w.Header().Set(errCodeHeader, "EPIPE")
		}
		WriteError(w, err)
		return
	}
	WriteJSON(w, struct{ Bytes int64 }{n})
}

// rightsConn is a client connection whose first write carries fd.
type rightsConn struct {
	*net.UnixConn
	fd   int
	sent bool
}

func (c *rightsConn) Write(b []byte) (int, error) {
	if c.sent || len(b) == 0 {
		return c.UnixConn.Write(b)
	}
	c.sent = true
	n, _, err := c.WriteMsgUnix(b, unix.UnixRights(c.fd), nil)
	if err != nil || n == len(b) {
		return n, err
	}
	m, err := c.UnixConn.Write(b[n:])
	return n + m, err
}

// CatFile writes the file at id into f: the daemon writes it there itself
// (f's descriptor travels over the socket), so the bytes do not pass
// through this process. A write into a closed pipe is an error wrapping
// syscall.EPIPE.
func (c *Client) CatFile(ctx context.Context, id cid.Cid, f *os.File, opts node.FetchOptions) (int64, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fd int
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return 0, err
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", c.path)
			if err != nil {
				return nil, err
			}
			return &rightsConn{UnixConn: conn.(*net.UnixConn), fd: fd}, nil
		},
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	u := "http://share/v0/cat?" + url.Values{"arg": {id.String()}, "timeout": {timeoutArg(opts)}, "fd": {"1"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	runtime.KeepAlive(f) // its descriptor was in use until the request went
	if err != nil {
		return 0, daemonGone(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == "application/octet-stream" {
		// A daemon that ignores fd=1 (an older build) streams the bytes.
		n, err := io.Copy(f, resp.Body)
		if err == nil {
			err = trailerError(resp.Trailer)
		}
		return n, err
	}
	var out struct {
		Bytes int64
		errorJSON
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, daemonGone(err)
	}
	if out.Error != "" || resp.StatusCode != http.StatusOK {
		if resp.Header.Get(errCodeHeader) == "EPIPE" {
			return 0, syscall.EPIPE
		}
		if out.Error == "" {
			out.Error = resp.Status
		}
		return 0, out.err()
	}
	return out.Bytes, nil
}
