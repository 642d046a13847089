package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

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

// WriteError writes err as a JSON error answer.
func WriteError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorJSON{Error: err.Error()})
}

func cidArg(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
	s := r.URL.Query().Get("arg")
	c, err := cid.Decode(s)
	if err != nil {
		WriteError(w, http.StatusBadRequest, fmt.Errorf("invalid CID %q: %v", s, err))
		return cid.Undef, false
	}
	return c, true
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
		s.send(event{Error: err.Error()})
		return
	}
	b, _ := json.Marshal(result)
	s.send(event{Result: b})
}

func (s *Server) routes() {
	// Profiles of the daemon, for people who debug (the socket is 0600).
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.mux.HandleFunc("POST /v0/add", s.add)
	s.mux.HandleFunc("POST /v0/cat", s.cat)
	s.mux.HandleFunc("POST /v0/get", func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		st := newStream(w)
		err := s.api.Get(r.Context(), c, r.URL.Query().Get("out"), fetchOptions(r, st))
		st.finish(true, err)
	})
	s.mux.HandleFunc("POST /v0/ls", func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		entries, err := s.api.Ls(r.Context(), c, fetchOptions(r, nil))
		if err != nil {
			WriteError(w, http.StatusInternalServerError, err)
			return
		}
		WriteJSON(w, entries)
	})
	s.mux.HandleFunc("POST /v0/pin/add", func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		q := r.URL.Query()
		st := newStream(w)
		err := s.api.PinAdd(r.Context(), c, pin.Mode(q.Get("mode")), q.Get("name"), fetchOptions(r, st))
		st.finish(true, err)
	})
	s.mux.HandleFunc("POST /v0/pin/rm", func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		if err := s.api.PinRm(r.Context(), c); err != nil {
			WriteError(w, http.StatusInternalServerError, err)
			return
		}
		WriteJSON(w, true)
	})
	s.mux.HandleFunc("POST /v0/pin/ls", func(w http.ResponseWriter, r *http.Request) {
		pins, err := s.api.PinLs(r.Context())
		if err != nil {
			WriteError(w, http.StatusInternalServerError, err)
			return
		}
		out := make([]pinJSON, len(pins))
		for i, p := range pins {
			out[i] = pinJSON{Cid: p.Cid.String(), Mode: string(p.Mode), Name: p.Name}
		}
		WriteJSON(w, out)
	})
	s.mux.HandleFunc("POST /v0/pin/verify", func(w http.ResponseWriter, r *http.Request) {
		st := newStream(w)
		bad, err := s.api.PinVerify(r.Context(), func(p pin.Pin, perr error) {
			pj := pinJSON{Cid: p.Cid.String(), Mode: string(p.Mode), Name: p.Name}
			if perr != nil {
				pj.Err = perr.Error()
			}
			st.send(event{Pin: &pj})
		})
		st.finish(bad, err)
	})
	s.mux.HandleFunc("POST /v0/gc", func(w http.ResponseWriter, r *http.Request) {
		st := newStream(w)
		res, err := s.api.GC(r.Context())
		st.finish(res, err)
	})
	s.mux.HandleFunc("POST /v0/repo/stat", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.api.Stat(r.Context())
		if err != nil {
			WriteError(w, http.StatusInternalServerError, err)
			return
		}
		WriteJSON(w, st)
	})
	s.mux.HandleFunc("POST /v0/repo/verify", func(w http.ResponseWriter, r *http.Request) {
		st := newStream(w)
		res, err := s.api.RepoVerify(r.Context(), func(n int) { st.progress(int64(n)) })
		st.finish(res, err)
	})
	s.mux.HandleFunc("POST /v0/export", func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		w.Header().Set("Trailer", errTrailer)
		cw := &countingWriter{w: w}
		err := s.api.Export(r.Context(), c, cw, fetchOptions(r, nil))
		if err == nil {
			return
		}
		if !cw.started {
			WriteError(w, http.StatusInternalServerError, err)
			return
		}
		w.Header().Set(errTrailer, err.Error())
	})
	s.mux.HandleFunc("POST /v0/import", func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			WriteError(w, http.StatusInternalServerError, err)
			return
		}
		roots, err := s.api.Import(r.Context(), r.Body, r.URL.Query().Get("pin") != "0")
		if err != nil {
			WriteError(w, http.StatusInternalServerError, err)
			return
		}
		out := make([]string, len(roots))
		for i, c := range roots {
			out[i] = c.String()
		}
		WriteJSON(w, out)
	})
	s.mux.HandleFunc("POST /v0/id", func(w http.ResponseWriter, r *http.Request) {
		id, err := s.api.ID(r.Context())
		if err != nil {
			WriteError(w, http.StatusInternalServerError, err)
			return
		}
		WriteJSON(w, id)
	})
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
	path := q.Get("path")
	var body io.Reader
	if q.Get("stream") == "1" {
		// Progress events go out while the body still comes in; without
		// full duplex, net/http would cut the body off at the first flush.
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			WriteError(w, http.StatusInternalServerError, err)
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

func (s *Server) cat(w http.ResponseWriter, r *http.Request) {
	c, ok := cidArg(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("fd") == "1" {
		s.catFD(w, r, c)
		return
	}
	w.Header().Set("Trailer", errTrailer)
	cw := &countingWriter{w: w}
	_, err := s.api.Cat(r.Context(), c, cw, fetchOptions(r, nil))
	if err == nil {
		return
	}
	if cw.n == 0 && !cw.started {
		WriteError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set(errTrailer, err.Error())
}

type countingWriter struct {
	w       http.ResponseWriter
	n       int64
	started bool
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if !c.started {
		c.w.Header().Set("Content-Type", "application/octet-stream")
		c.started = true
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ErrStatus maps an error to an HTTP status for extra handlers.
func ErrStatus(err error) int {
	if errors.Is(err, context.Canceled) {
		return 499
	}
	return http.StatusInternalServerError
}
