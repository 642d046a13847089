package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/gateway"
	"github.com/share-p2p/share/gc"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/pin"
)

// Server serves a node.API over HTTP.
type Server struct {
	api    node.API
	mux    *http.ServeMux
	extra  map[string]http.HandlerFunc
	logger *slog.Logger
}

// NewServer returns a server for api. Handle adds commands the node.API
// interface does not have (peers, connect, config).
func NewServer(a node.API, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{api: a, mux: http.NewServeMux(), logger: logger}
	s.routes()
	return s
}

// Handle registers an extra command at /v0/<name>.
func (s *Server) Handle(name string, h http.HandlerFunc) { s.mux.HandleFunc("POST /v0/"+name, h) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ListenUnix listens on the unix socket path with mode 0600, replacing a
// stale socket that nobody answers on.
func ListenUnix(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: another daemon is already serving this repository", path)
	}
	os.Remove(path)
	old := syscallUmask(0o177)
	ln, err := net.Listen("unix", path)
	syscallUmask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve serves s on ln until ctx ends, then shuts down, letting requests
// in flight finish for a few seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }, ConnContext: connContext}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(fdListener{ln}) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	return nil
}

// WriteJSON writes v as the JSON answer.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// WriteError writes err as a JSON error answer, with the status of its
// kind (ErrStatus).
func WriteError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ErrStatus(err))
	json.NewEncoder(w).Encode(errorOf(err))
}

// answer writes v as the JSON answer, or err.
func answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, v)
}

// pathArg parses ?arg=, the CID or path a command is about.
func pathArg(r *http.Request) (dag.Path, error) {
	return dag.ParsePath(r.URL.Query().Get("arg"))
}

// withCID is h for a command about the CID in ?arg=, answering a bad one.
// ?arg= may be a path (CID/a/b, /ipfs/CID/a/b), which is resolved first:
// the CLI resolves its arguments with /v0/resolve, other clients (curl)
// need not.
func (s *Server) withCID(h func(w http.ResponseWriter, r *http.Request, c cid.Cid)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := pathArg(r)
		if err != nil {
			WriteError(w, err)
			return
		}
		if len(p.Segments) > 0 || p.Name != "" {
			if p.Root, err = s.api.Resolve(r.Context(), p, fetchOptions(r, nil)); err != nil {
				WriteError(w, err)
				return
			}
		}
		h(w, r, p.Root)
	}
}

// resolve answers the CID that the path in ?arg= names.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	p, err := pathArg(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	c, err := s.api.Resolve(r.Context(), p, fetchOptions(r, nil))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, resolvedJSON{Cid: c.String()})
}

// stream writes NDJSON events, flushing each; safe for concurrent use.
type stream struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	enc *json.Encoder
	// lastProgress and lastPhase throttle progress events.
	lastProgress time.Time
	lastPhase    string
}

func newStream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, enc: json.NewEncoder(w)}
}

func (s *stream) send(e event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enc.Encode(e)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// buffer writes e without flushing: the caller flushes after a batch.
func (s *stream) buffer(e event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enc.Encode(e)
}

// flush sends what was written so far (the headers, at first).
func (s *stream) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *stream) progress(n int64) {
	s.mu.Lock()
	if time.Since(s.lastProgress) < 100*time.Millisecond {
		s.mu.Unlock()
		return
	}
	s.lastProgress = time.Now()
	s.mu.Unlock()
	s.send(event{Progress: &n})
}

// progressEvent sends a fetch's progress, throttled.
func (s *stream) progressEvent(p node.Progress) {
	s.mu.Lock()
	if time.Since(s.lastProgress) < 100*time.Millisecond && p.Phase == s.lastPhase {
		s.mu.Unlock()
		return
	}
	s.lastProgress, s.lastPhase = time.Now(), p.Phase
	s.mu.Unlock()
	s.send(event{Fetch: &p})
}

// fetchOptions reads ?timeout= and sends progress to st (if not nil).
func fetchOptions(r *http.Request, st *stream) node.FetchOptions {
	var o node.FetchOptions
	if d, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil {
		o.Timeout = d
	}
	if st != nil {
		o.Progress = st.progressEvent
	}
	return o
}

func (s *stream) finish(result any, err error) {
	if err != nil {
		s.send(event{errorJSON: errorOf(err)})
		return
	}
	b, _ := json.Marshal(result)
	s.send(event{Result: b})
}

// routes registers the daemon's profiles (for people who debug: the socket
// is 0600) and the commands of node.API.
func (s *Server) routes() {
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	for _, c := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"add", s.add},
		{"resolve", s.resolve},
		{"cat", s.withCID(s.cat)},
		{"get", s.withCID(s.get)},
		{"ls", s.withCID(s.ls)},
		{"pin/add", s.withCID(s.pinAdd)},
		{"pin/rm", s.withCID(s.pinRm)},
		{"pin/ls", s.pinLs},
		{"pin/verify", s.pinVerify},
		{"gc", s.gc},
		{"repo/stat", s.stat},
		{"repo/verify", s.repoVerify},
		{"export", s.withCID(s.export)},
		{"import", s.importCAR},
		{"id", s.id},
		{"name/publish", s.namePublish},
		{"name/resolve", s.nameResolve},
	} {
		s.Handle(c.name, c.h)
	}
}

// get writes the content at c to ?out=, streaming the fetch's progress.
func (s *Server) get(w http.ResponseWriter, r *http.Request, c cid.Cid) {
	st := newStream(w)
	opts := node.GetOptions{FetchOptions: fetchOptions(r, st)}
	if n, err := strconv.Atoi(r.URL.Query().Get("links")); err == nil {
		opts.Links = dag.LinkPolicy(n)
	}
	opts.Refused = func(path, target, why string) {
		st.send(event{Refused: &refusedJSON{Path: path, Target: target, Why: why}})
	}
	err := s.api.Get(r.Context(), c, r.URL.Query().Get("out"), opts)
	st.finish(true, err)
}

// ls lists the directory c.
func (s *Server) ls(w http.ResponseWriter, r *http.Request, c cid.Cid) {
	entries, err := s.api.Ls(r.Context(), c, fetchOptions(r, nil))
	answer(w, entries, err)
}

// pinAdd pins c (?mode=, ?name=), streaming the fetch's progress.
func (s *Server) pinAdd(w http.ResponseWriter, r *http.Request, c cid.Cid) {
	q := r.URL.Query()
	st := newStream(w)
	err := s.api.PinAdd(r.Context(), c, pin.Mode(q.Get("mode")), q.Get("name"), fetchOptions(r, st))
	st.finish(true, err)
}

func (s *Server) pinRm(w http.ResponseWriter, r *http.Request, c cid.Cid) {
	answer(w, true, s.api.PinRm(r.Context(), c))
}

func (s *Server) pinLs(w http.ResponseWriter, r *http.Request) {
	pins, err := s.api.PinLs(r.Context())
	if err != nil {
		WriteError(w, err)
		return
	}
	out := make([]pinJSON, len(pins))
	for i, p := range pins {
		out[i] = pinJSON{Cid: p.Cid.String(), Mode: string(p.Mode), Name: p.Name}
	}
	WriteJSON(w, out)
}

// pinVerify streams one event per pin, then the number of bad ones.
func (s *Server) pinVerify(w http.ResponseWriter, r *http.Request) {
	st := newStream(w)
	bad, err := s.api.PinVerify(r.Context(), func(p pin.Pin, perr error) {
		pj := pinJSON{Cid: p.Cid.String(), Mode: string(p.Mode), Name: p.Name}
		if perr != nil {
			pj.Err = perr.Error()
		}
		st.send(event{Pin: &pj})
	})
	st.finish(bad, err)
}

func (s *Server) gc(w http.ResponseWriter, r *http.Request) {
	st := newStream(w)
	res, err := s.api.GC(r.Context(), func(wt gc.Waiting) {
		wj := waitingJSON{Fetches: make([]string, len(wt.Fetches))}
		for i, c := range wt.Fetches {
			wj.Fetches[i] = c.String()
		}
		st.send(event{Waiting: &wj})
	})
	st.finish(res, err)
}

func (s *Server) stat(w http.ResponseWriter, r *http.Request) {
	st, err := s.api.Stat(r.Context())
	answer(w, st, err)
}

func (s *Server) repoVerify(w http.ResponseWriter, r *http.Request) {
	st := newStream(w)
	res, err := s.api.RepoVerify(r.Context(), func(n int) { st.progress(int64(n)) })
	st.finish(res, err)
}

// export streams the DAG under c as a CAR file.
func (s *Server) export(w http.ResponseWriter, r *http.Request, c cid.Cid) {
	streamBytes(w, func(cw io.Writer) error {
		return s.api.Export(r.Context(), c, cw, fetchOptions(r, nil))
	})
}

// importCAR stores (and, unless ?pin=0, pins) the CAR file in the body
// and answers its roots.
func (s *Server) importCAR(w http.ResponseWriter, r *http.Request) {
	// The body comes in while the answer may already go out.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		WriteError(w, err)
		return
	}
	roots, err := s.api.Import(r.Context(), r.Body, r.URL.Query().Get("pin") != "0")
	if err != nil {
		WriteError(w, err)
		return
	}
	out := make([]string, len(roots))
	for i, c := range roots {
		out[i] = c.String()
	}
	WriteJSON(w, out)
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) {
	id, err := s.api.ID(r.Context())
	answer(w, id, err)
}

// add imports the request body (a file's bytes) or, with dir=1, the
// directory at path on this machine (the socket is the same user's).
func (s *Server) add(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := node.AddOptions{
		Recursive: q.Get("recursive") == "1",
		Chunker:   q.Get("chunker"),
		NoPin:     q.Get("pin") == "0",
		PinName:   q.Get("name"),
	}
	var err error
	if opts.Format, err = formatOptions(q); err != nil {
		WriteError(w, err)
		return
	}
	path := q.Get("path")
	var body io.Reader
	if q.Get("stream") == "1" {
		// Progress events go out while the body still comes in; without
		// full duplex, net/http would cut the body off at the first flush.
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			WriteError(w, err)
			return
		}
		body = r.Body
	}
	st := newStream(w)
	opts.Progress = st.progress
	root, err := s.api.Add(r.Context(), path, body, opts, func(a node.Added) {
		st.send(event{Added: &addedJSON{Name: a.Name, Cid: a.Cid.String(), Size: a.Size}})
	})
	if err != nil {
		st.finish(nil, err)
		return
	}
	st.finish(root.String(), nil)
}

// formatOptions reads the format settings of an add request (setFormat);
// a parameter that is absent is unset.
func formatOptions(q url.Values) (dag.FormatOptions, error) {
	f := dag.FormatOptions{Hash: q.Get("hash")}
	if v := q.Get("cid-version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return f, errs.Errorf(errs.Invalid, "cid-version %q: not a number", v)
		}
		f.CIDVersion = &n
	}
	if v := q.Get("raw-leaves"); v != "" {
		b := v == "1"
		f.RawLeaves = &b
	}
	f.PreserveMode, f.PreserveMtime = q.Get("preserve-mode") == "1", q.Get("preserve-mtime") == "1"
	return f, nil
}

// cat streams the file c, or with ?fd=1 writes it into the descriptor
// that came with the request.
func (s *Server) cat(w http.ResponseWriter, r *http.Request, c cid.Cid) {
	if r.URL.Query().Get("fd") == "1" {
		s.catFD(w, r, c)
		return
	}
	streamBytes(w, func(cw io.Writer) error {
		_, err := s.api.Cat(r.Context(), c, cw, fetchOptions(r, nil))
		return err
	})
}

// streamBytes answers with the bytes write writes: an error before the
// first byte is a JSON error answer, one after it goes in the trailers.
func streamBytes(w http.ResponseWriter, write func(io.Writer) error) {
	declareErrorTrailers(w)
	cw := &bytesWriter{w: w}
	err := write(cw)
	switch {
	case err == nil:
	case !cw.started:
		WriteError(w, err)
	default:
		setErrorTrailers(w, err)
	}
}

// bytesWriter is a byte answer that knows whether it has started.
type bytesWriter struct {
	w       http.ResponseWriter
	started bool
}

func (b *bytesWriter) Write(p []byte) (int, error) {
	if !b.started {
		b.w.Header().Set("Content-Type", "application/octet-stream")
		b.started = true
	}
	return b.w.Write(p)
}

// ErrStatus is the HTTP status of an error answer: the gateway's, by the
// error's kind.
func ErrStatus(err error) int { return gateway.HTTPStatus(errs.KindOf(err)) }
