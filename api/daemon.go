package api

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/ipfs/go-cid"

	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/share-p2p/share/p2p/peer"

	"github.com/share-p2p/share/node"
)

// NewDaemonServer returns the API server of a running daemon: node.API
// plus peers and connect.
func NewDaemonServer(d *node.Daemon, logger *slog.Logger) *Server {
	s := NewServer(d, logger)
	s.Handle("peers", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, d.Peers(r.Context()))
	})
	s.Handle("connect", func(w http.ResponseWriter, r *http.Request) {
		id, err := d.Connect(r.Context(), r.URL.Query().Get("arg"))
		answer(w, id, err)
	})
	s.Handle("provide", s.withCID(func(w http.ResponseWriter, r *http.Request, c cid.Cid) {
		st := newStream(w)
		st.finish(true, d.Provide(r.Context(), c))
	}))
	s.Handle("routing/findprovs", s.withCID(func(w http.ResponseWriter, r *http.Request, c cid.Cid) {
		max, _ := strconv.Atoi(r.URL.Query().Get("max"))
		st := newStream(w)
		err := d.FindProviders(r.Context(), c, max, func(ai peer.AddrInfo) {
			st.send(event{Provider: &providerJSON{ID: ai.ID.String(), Addrs: multiaddrStrings(ai)}})
		})
		st.finish(true, err)
	}))
	s.pubsubRoutes(d)
	s.followRoutes(d)
	s.Handle("config/get", func(w http.ResponseWriter, r *http.Request) {
		v, err := d.Repo.Config().Get(r.URL.Query().Get("key"))
		answer(w, v, err)
	})
	s.Handle("config/set", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		answer(w, true, d.SetConfig(r.Context(), q.Get("key"), q.Get("value")))
	})
	return s
}

// ConfigGet reads a key of the daemon's configuration.
func (c *Client) ConfigGet(ctx context.Context, key string) (json.RawMessage, error) {
	var v json.RawMessage
	err := c.Call(ctx, "config/get", url.Values{"key": {key}}, nil, &v)
	return v, err
}

// ConfigSet sets a key of the daemon's configuration (saved to its file).
func (c *Client) ConfigSet(ctx context.Context, key, value string) error {
	return c.Call(ctx, "config/set", url.Values{"key": {key}, "value": {value}}, nil, nil)
}

// Peers lists the daemon's connected peers.
func (c *Client) Peers(ctx context.Context) ([]node.PeerInfo, error) {
	var out []node.PeerInfo
	err := c.Call(ctx, "peers", nil, nil, &out)
	return out, err
}

// Connect asks the daemon to dial addr (a multiaddr with /p2p/ID).
func (c *Client) Connect(ctx context.Context, addr string) (string, error) {
	var id string
	err := c.Call(ctx, "connect", url.Values{"arg": {addr}}, nil, &id)
	return id, err
}

// Serve serves s on the unix socket path until ctx ends.
func ServeUnix(ctx context.Context, s *Server, path string) (net.Listener, <-chan error, error) {
	ln, err := ListenUnix(path)
	if err != nil {
		return nil, nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	return ln, errc, nil
}

// ServeTCP serves h (the gateway) on addr until ctx ends and returns the
// address it is bound to.
func ServeTCP(ctx context.Context, h http.Handler, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go hs.Serve(ln)
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	})
	return ln.Addr().String(), nil
}

type providerJSON struct {
	ID    string
	Addrs []string
}

func multiaddrStrings(ai peer.AddrInfo) []string {
	out := make([]string, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		out = append(out, a.String())
	}
	return out
}

// Provide asks the daemon to announce c in the DHT now.
func (c *Client) Provide(ctx context.Context, id cid.Cid) error {
	return c.events(ctx, "provide", url.Values{"arg": {id.String()}}, nil, nil, nil)
}

// FindProviders streams what the daemon's DHT lookup finds.
func (c *Client) FindProviders(ctx context.Context, id cid.Cid, max int, fn func(id string, addrs []string)) error {
	return c.events(ctx, "routing/findprovs", url.Values{"arg": {id.String()}, "max": {strconv.Itoa(max)}}, nil, func(e event) {
		if e.Provider != nil {
			fn(e.Provider.ID, e.Provider.Addrs)
		}
	}, nil)
}
