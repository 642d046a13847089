package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/gc"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/pin"
)

// ErrNoDaemon is returned by Dial when no daemon answers on the socket.
var ErrNoDaemon = errors.New("no daemon is running")

// Client talks to a daemon over its unix socket. It implements node.API.
type Client struct {
	hc   *http.Client
	path string
}

var _ node.API = (*Client)(nil)

// Dial connects to the daemon serving the socket at path, or returns
// ErrNoDaemon when there is none (a missing or stale socket).
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoDaemon, err)
	}
	c.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
		WriteBufferSize:    1 << 20,
		ReadBufferSize:     1 << 20,
	}
	return &Client{hc: &http.Client{Transport: tr}, path: path}, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Call posts to /v0/name with query q and body, and decodes a JSON answer
// into out (when out is not nil). Extra commands use it directly.
func (c *Client) Call(ctx context.Context, name string, q url.Values, body io.Reader, out any) error {
	resp, err := c.post(ctx, name, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("daemon answer to %s: %w", name, err)
	}
	return nil
}

func (c *Client) post(ctx context.Context, name string, q url.Values, body io.Reader) (*http.Response, error) {
	u := "http://share/v0/" + name
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, daemonGone(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e errorJSON
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return nil, e.err()
		}
		return nil, fmt.Errorf("daemon: %s", resp.Status)
	}
	return resp, nil
}

// events reads an NDJSON stream, calling on for each event until the
// final Result (decoded into out) or Error.
func (c *Client) events(ctx context.Context, name string, q url.Values, body io.Reader, on func(event), out any) error {
	resp, err := c.post(ctx, name, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("daemon answer to %s: %w", name, err)
		}
		switch {
		case e.Error != "":
			return e.err()
		case e.Result != nil:
			if out != nil {
				return json.Unmarshal(e.Result, out)
			}
			return nil
		case on != nil:
			on(e)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return daemonGone(err)
	}
	return daemonGone(fmt.Errorf("%s ended without a result", name))
}

func onProgress(f func(int64)) func(event) {
	return func(e event) {
		if e.Progress != nil && f != nil {
			f(*e.Progress)
		}
	}
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Add streams a file (or r) to the daemon; a directory is read by the
// daemon itself from its absolute path.
func (c *Client) Add(ctx context.Context, path string, r io.Reader, opts node.AddOptions, onEntry func(node.Added)) (cid.Cid, error) {
	q := url.Values{"chunker": {opts.Chunker}, "pin": {flag(!opts.NoPin)}, "name": {opts.PinName}, "recursive": {flag(opts.Recursive)}}
	setFormat(q, opts.Format)
	var body io.Reader
	if r != nil {
		q.Set("path", path)
		q.Set("stream", "1")
		body = r
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return cid.Undef, err
		}
		q.Set("path", abs)
	}
	var root string
	err := c.events(ctx, "add", q, body, func(e event) {
		if e.Progress != nil && opts.Progress != nil {
			opts.Progress(*e.Progress)
		}
		if e.Added != nil && onEntry != nil {
			ec, err := cid.Decode(e.Added.Cid)
			if err == nil {
				name := e.Added.Name
				if r == nil {
					// The daemon named entries from the absolute path's base.
					name = filepath.Join(filepath.Base(filepath.Clean(path)), relToBase(e.Added.Name))
				}
				onEntry(node.Added{Name: name, Cid: ec, Size: e.Added.Size})
			}
		}
	}, &root)
	if err != nil {
		return cid.Undef, err
	}
	return cid.Decode(root)
}

// setFormat puts the format settings that are set into q; the daemon
// applies kubo's rules to them, as a node without a daemon does.
func setFormat(q url.Values, f dag.FormatOptions) {
	if f.CIDVersion != nil {
		q.Set("cid-version", strconv.Itoa(*f.CIDVersion))
	}
	if f.Hash != "" {
		q.Set("hash", f.Hash)
	}
	if f.RawLeaves != nil {
		q.Set("raw-leaves", flag(*f.RawLeaves))
	}
	if f.PreserveMode {
		q.Set("preserve-mode", "1")
	}
	if f.PreserveMtime {
		q.Set("preserve-mtime", "1")
	}
}

// Resolve asks the daemon for the CID that p names; it fetches the
// directories on the way that it does not have.
func (c *Client) Resolve(ctx context.Context, p dag.Path, opts node.FetchOptions) (cid.Cid, error) {
	if len(p.Segments) == 0 && p.Name == "" {
		return p.Root, nil // nothing to ask (and an older daemon knows no resolve)
	}
	var out resolvedJSON
	if err := c.Call(ctx, "resolve", url.Values{"arg": {p.String()}, "timeout": {timeoutArg(opts)}}, nil, &out); err != nil {
		return cid.Undef, err
	}
	rc, err := cid.Decode(out.Cid)
	if err != nil {
		return cid.Undef, fmt.Errorf("daemon sent a bad CID %q", out.Cid)
	}
	return rc, nil
}

// daemonGone explains a connection to the daemon that broke mid-command.
func daemonGone(err error) error {
	return fmt.Errorf("the daemon stopped answering during the command (%v): see its log, restart it if needed, and run the command again", err)
}

// relToBase drops the first element of a slash path.
func relToBase(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] == filepath.Separator {
			return name[i+1:]
		}
	}
	return ""
}

// Cat copies the file's bytes from the daemon to w.
func (c *Client) Cat(ctx context.Context, id cid.Cid, w io.Writer, opts node.FetchOptions) (int64, error) {
	resp, err := c.post(ctx, "cat", url.Values{"arg": {id.String()}, "timeout": {timeoutArg(opts)}}, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return n, daemonGone(err)
		}
		return n, err
	}
	return n, trailerError(resp.Trailer)
}

// Get asks the daemon to write the content at c to out (made absolute).
func (c *Client) Get(ctx context.Context, id cid.Cid, out string, opts node.GetOptions) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	q := url.Values{"arg": {id.String()}, "out": {abs}, "timeout": {timeoutArg(opts.FetchOptions)},
		"links": {strconv.Itoa(int(opts.Links))}}
	progress := onFetch(opts.Progress)
	return c.events(ctx, "get", q, nil, func(e event) {
		progress(e)
		if r := e.Refused; r != nil && opts.Refused != nil {
			// The daemon names the link by the absolute path it wrote.
			shown := r.Path
			if rest, ok := strings.CutPrefix(r.Path, abs); ok {
				shown = out + rest
			}
			opts.Refused(shown, r.Target, r.Why)
		}
	}, nil)
}

func timeoutArg(o node.FetchOptions) string {
	if o.Timeout <= 0 {
		return ""
	}
	return o.Timeout.String()
}

func onFetch(f func(node.Progress)) func(event) {
	return func(e event) {
		if e.Fetch != nil && f != nil {
			f(*e.Fetch)
		}
	}
}

// Ls lists a directory.
func (c *Client) Ls(ctx context.Context, id cid.Cid, opts node.FetchOptions) ([]node.Entry, error) {
	var out []node.Entry
	err := c.Call(ctx, "ls", url.Values{"arg": {id.String()}, "timeout": {timeoutArg(opts)}}, nil, &out)
	return out, err
}

// PinAdd pins c, the daemon fetching what is missing.
func (c *Client) PinAdd(ctx context.Context, id cid.Cid, mode pin.Mode, name string, opts node.FetchOptions) error {
	q := url.Values{"arg": {id.String()}, "mode": {string(mode)}, "name": {name}, "timeout": {timeoutArg(opts)}}
	return c.events(ctx, "pin/add", q, nil, onFetch(opts.Progress), nil)
}

// PinRm unpins c.
func (c *Client) PinRm(ctx context.Context, id cid.Cid) error {
	return c.Call(ctx, "pin/rm", url.Values{"arg": {id.String()}}, nil, nil)
}

// PinLs lists pins.
func (c *Client) PinLs(ctx context.Context) ([]pin.Pin, error) {
	var raw []pinJSON
	if err := c.Call(ctx, "pin/ls", nil, nil, &raw); err != nil {
		return nil, err
	}
	pins := make([]pin.Pin, 0, len(raw))
	for _, p := range raw {
		pc, err := cid.Decode(p.Cid)
		if err != nil {
			return nil, fmt.Errorf("daemon sent a bad pin CID %q", p.Cid)
		}
		pins = append(pins, pin.Pin{Cid: pc, Mode: pin.Mode(p.Mode), Name: p.Name})
	}
	return pins, nil
}

// PinVerify checks every pin.
func (c *Client) PinVerify(ctx context.Context, report func(pin.Pin, error)) (int, error) {
	var bad int
	err := c.events(ctx, "pin/verify", nil, nil, func(e event) {
		if e.Pin == nil || report == nil {
			return
		}
		pc, _ := cid.Decode(e.Pin.Cid)
		var perr error
		if e.Pin.Err != "" {
			perr = errors.New(e.Pin.Err)
		}
		report(pin.Pin{Cid: pc, Mode: pin.Mode(e.Pin.Mode), Name: e.Pin.Name}, perr)
	}, &bad)
	return bad, err
}

// GC runs a collection in the daemon.
func (c *Client) GC(ctx context.Context, waiting func(gc.Waiting)) (gc.Result, error) {
	var res gc.Result
	err := c.events(ctx, "gc", nil, nil, func(e event) {
		if e.Waiting == nil || waiting == nil {
			return
		}
		var wt gc.Waiting
		for _, s := range e.Waiting.Fetches {
			if r, err := cid.Decode(s); err == nil {
				wt.Fetches = append(wt.Fetches, r)
			}
		}
		waiting(wt)
	}, &res)
	return res, err
}

// Stat returns the repository's figures.
func (c *Client) Stat(ctx context.Context) (node.RepoStat, error) {
	var st node.RepoStat
	err := c.Call(ctx, "repo/stat", nil, nil, &st)
	return st, err
}

// RepoVerify verifies the daemon's repository.
func (c *Client) RepoVerify(ctx context.Context, progress func(int)) (node.VerifyResult, error) {
	var res node.VerifyResult
	err := c.events(ctx, "repo/verify", nil, nil, onProgress(func(n int64) {
		if progress != nil {
			progress(int(n))
		}
	}), &res)
	return res, err
}

// ID returns the daemon's identity and addresses.
func (c *Client) ID(ctx context.Context) (node.IDInfo, error) {
	var id node.IDInfo
	err := c.Call(ctx, "id", nil, nil, &id)
	return id, err
}

// Export streams the DAG under c as a CAR file from the daemon to w.
func (c *Client) Export(ctx context.Context, id cid.Cid, w io.Writer, opts node.FetchOptions) error {
	resp, err := c.post(ctx, "export", url.Values{"arg": {id.String()}, "timeout": {timeoutArg(opts)}}, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return err
	}
	return trailerError(resp.Trailer)
}

// Import streams a CAR file to the daemon, which stores and pins it.
func (c *Client) Import(ctx context.Context, r io.Reader, pinRoots bool) ([]cid.Cid, error) {
	var raw []string
	if err := c.Call(ctx, "import", url.Values{"pin": {flag(pinRoots)}}, r, &raw); err != nil {
		return nil, err
	}
	roots := make([]cid.Cid, 0, len(raw))
	for _, s := range raw {
		rc, err := cid.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("daemon sent a bad CID %q", s)
		}
		roots = append(roots, rc)
	}
	return roots, nil
}
