package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/car"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
)

// Media types of the trustless responses.
const (
	rawType = "application/vnd.ipld.raw"
	carType = "application/vnd.ipld.car"
)

// immutable is the Cache-Control of anything named by a CID.
const immutable = "public, max-age=29030400, immutable"

// request is one /ipfs/ request being served.
type request struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	g    share.Getter
	path dag.Path // the URL's, from /ipfs/ on (the name's, for /ipns/)
	dir  bool     // the URL path ends with a slash
	// cache is the Cache-Control of the content: immutable under /ipfs/,
	// the record's TTL under /ipns/.
	cache string
}

// errBadRequest marks an error in the request itself.
var errBadRequest = errs.New(errs.Invalid, "bad request")

func (h *Handler) serveContent(w http.ResponseWriter, r *http.Request) {
	p, err := dag.ParsePath(r.URL.Path)
	if err != nil {
		httpError(w, statusOf(err), err.Error())
		return
	}
	q := &request{h: h, w: w, r: r, ctx: r.Context(), path: p, dir: strings.HasSuffix(r.URL.Path, "/"), cache: immutable}
	if p.Name != "" {
		if err := q.resolveName(); err != nil {
			q.fail(err)
			return
		}
	}
	q.g = withTimeout(h.node.Getter(q.ctx), h.opts.BlockTimeout)
	if err := q.serve(); err != nil {
		q.fail(err)
	}
}

// resolveName replaces the /ipns/ path of the request by the /ipfs/ path
// its name leads to, cached for the record's TTL.
func (q *request) resolveName() error {
	if q.h.opts.Names == nil {
		return errs.Errorf(errs.NotFound, "%s: this gateway serves no /ipns/ names", q.path)
	}
	p, ttl, err := q.h.opts.Names.ResolvePath(q.ctx, q.path)
	if err != nil {
		return err
	}
	q.path, q.cache = p, fmt.Sprintf("public, max-age=%d", int(ttl.Seconds()))
	q.w.Header().Set("X-Ipfs-Roots", p.Root.String())
	return nil
}

// format returns the response format asked for: "raw", "car" or "".
func (q *request) format() (string, error) {
	switch f := q.r.URL.Query().Get("format"); f {
	case "raw", "car", "":
		if f != "" {
			return f, nil
		}
	default:
		return "", fmt.Errorf("%w: unknown format %q (want raw or car)", errBadRequest, f)
	}
	for _, a := range strings.Split(q.r.Header.Get("Accept"), ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(a))
		switch mt {
		case rawType:
			return "raw", nil
		case carType:
			return "car", nil
		}
	}
	return "", nil
}

func (q *request) serve() error {
	format, err := q.format()
	if err != nil {
		return err
	}
	c, err := q.resolve()
	if err != nil {
		return err
	}
	switch format {
	case "raw":
		return q.serveRaw(c)
	case "car":
		return q.serveCAR(c)
	}
	if c.Type() == dag.Raw {
		return q.serveFile(c, q.name())
	}
	info, err := dag.Stat(q.ctx, q.g, c)
	if err != nil {
		return err
	}
	switch info.Type {
	case dag.TypeFile:
		return q.serveFile(c, q.name())
	case dag.TypeDirectory:
		return q.serveDir(c)
	case dag.TypeSymlink:
		// Following a symlink could leave the DAG; show it instead.
		q.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		q.w.Header().Set("ETag", `"`+c.String()+`"`)
		q.w.Header().Set("Cache-Control", q.cache)
		http.ServeContent(q.w, q.r, "", time.Time{}, strings.NewReader(info.Target))
		return nil
	}
	return fmt.Errorf("%w: %s: a UnixFS %s", dag.ErrUnsupported, c, info.Type)
}

// name is the file name the request ends with, "" when it names a bare CID.
func (q *request) name() string {
	if len(q.path.Segments) == 0 {
		return ""
	}
	return q.path.Base()
}

// resolve walks the path from the root through directories, as every
// command resolves its paths.
func (q *request) resolve() (cid.Cid, error) { return dag.Resolve(q.ctx, q.g, q.path) }

// notModified answers 304 when If-None-Match names etag.
func (q *request) notModified(etag string) bool {
	inm := q.r.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			h := q.w.Header()
			h.Set("ETag", etag)
			h.Set("Cache-Control", q.cache)
			q.w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

// serveFile serves the file c, named name (for its media type), with
// ranges and conditional requests.
func (q *request) serveFile(c cid.Cid, name string) error {
	etag := `"` + c.String() + `"`
	if q.notModified(etag) {
		return nil
	}
	ctx, cancel := context.WithCancel(q.ctx)
	defer cancel()
	fr, err := dag.NewFileReader(ctx, q.g, c)
	if err != nil {
		return err
	}
	ctype, err := q.contentType(fr, name)
	if err != nil {
		return err
	}
	h := q.w.Header()
	h.Set("Content-Type", ctype)
	h.Set("ETag", etag)
	h.Set("Cache-Control", q.cache)
	h.Set("X-Ipfs-Path", q.r.URL.Path)
	q.contentDisposition(name)
	var content io.ReadSeeker = fr
	if sequential(q.r.Header.Get("Range")) && fr.Size() > seqMin {
		sr := &seqReader{ctx: q.ctx, g: q.g, root: c, fr: fr, cancel: cancel, size: fr.Size()}
		defer sr.Close()
		content = sr
	}
	// ServeContent handles If-None-Match, If-Range, single ranges and
	// multipart/byteranges; a read error mid-body cuts the response short.
	http.ServeContent(q.w, q.r, "", time.Time{}, content)
	return nil
}

// contentType is the media type of a file: from ?filename or the name's
// extension, else sniffed from its first bytes.
func (q *request) contentType(fr *dag.FileReader, name string) (string, error) {
	if f := q.r.URL.Query().Get("filename"); f != "" {
		name = f
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t, nil
	}
	buf := make([]byte, 512)
	n, err := fr.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return "", err
	}
	return http.DetectContentType(buf[:n]), nil
}

// contentDisposition sets Content-Disposition for ?filename and ?download.
func (q *request) contentDisposition(name string) {
	v := q.r.URL.Query()
	f := v.Get("filename")
	if f == "" && v.Get("download") == "true" {
		f = name
	}
	if f == "" {
		return
	}
	disp := "inline"
	if v.Get("download") == "true" {
		disp = "attachment"
	}
	q.w.Header().Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": f}))
}

// serveRaw serves block c as it is stored.
func (q *request) serveRaw(c cid.Cid) error {
	etag := `"` + c.String() + `.raw"`
	if q.notModified(etag) {
		return nil
	}
	b, err := q.g.Get(q.ctx, c)
	if err != nil {
		return errs.E("get", c, err)
	}
	defer b.Release()
	if !b.Verified {
		if err := dag.Verify(c, b.Data); err != nil {
			return err
		}
	}
	h := q.w.Header()
	h.Set("Content-Type", rawType)
	h.Set("ETag", etag)
	h.Set("Cache-Control", q.cache)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": c.String() + ".bin"}))
	http.ServeContent(q.w, q.r, "", time.Time{}, bytes.NewReader(b.Data))
	return nil
}

// serveCAR streams the DAG under c as a CAR file. Errors before the first
// bytes leave give a status; later ones cut the response.
func (q *request) serveCAR(c cid.Cid) error {
	etag := `"` + c.String() + `.car"`
	if q.notModified(etag) {
		return nil
	}
	h := q.w.Header()
	h.Set("Content-Type", carType+"; version=1")
	h.Set("ETag", etag)
	h.Set("Cache-Control", q.cache)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": c.String() + ".car"}))
	if q.r.Method == http.MethodHead {
		return nil
	}
	lw := &lazyWriter{w: q.w}
	if err := car.Write(q.ctx, lw, q.g, c); err != nil {
		if !lw.started {
			return err
		}
		q.h.log.Debug("gateway: CAR response cut", "path", q.r.URL.Path, "err", err)
		panic(http.ErrAbortHandler) // the client must not take a cut file for a whole one
	}
	return nil
}

// lazyWriter sends the status line only with the first bytes.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// fail answers an error that happened before the response started.
func (q *request) fail(err error) {
	if q.ctx.Err() != nil && errors.Is(err, q.ctx.Err()) {
		return // the client left
	}
	code := statusOf(err)
	q.h.log.Debug("gateway: request failed", "path", q.r.URL.Path, "status", code, "err", err)
	httpError(q.w, code, http.StatusText(code)+": "+err.Error())
}

// statusOf maps an error to an HTTP status, by its kind.
func statusOf(err error) int { return HTTPStatus(errs.KindOf(err)) }

// HTTPStatus is the status that answers an error of kind k, here and in
// the daemon's API.
func HTTPStatus(k errs.Kind) int {
	switch k {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Timeout:
		// A block that did not arrive in time (BlockTimeout, or no peer
		// sent it) may exist: 504, as kubo answers, not 404, which
		// says the path is not in a DAG the gateway has.
		return http.StatusGatewayTimeout
	case errs.Corrupt:
		return http.StatusBadGateway
	case errs.Unsupported:
		return http.StatusNotImplemented
	case errs.NoSpace:
		return http.StatusInsufficientStorage
	case errs.Canceled:
		return 499 // the client closed the request (nginx's code)
	}
	return http.StatusInternalServerError
}

// withTimeout bounds each block fetch from g by d. The blocks are g's, as
// they are: their Verified and their Release pass through.
func withTimeout(g share.Getter, d time.Duration) share.Getter {
	return &timeoutGetter{g: g, d: d}
}

type timeoutGetter struct {
	g share.Getter
	d time.Duration
}

func (t *timeoutGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.g.Get(ctx, c)
}

func (t *timeoutGetter) Has(ctx context.Context, c cid.Cid) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.g.Has(ctx, c)
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(segs ...string) string {
	var sb strings.Builder
	for i, s := range segs {
		if i > 0 {
			sb.WriteByte('/')
		}
		sb.WriteString(url.PathEscape(s))
	}
	return sb.String()
}
