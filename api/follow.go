package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/share-p2p/share/node"
)

// followRoutes serves share follow: follow streams one {"Follow":{...}}
// event per version written (or failed attempt) until the client goes,
// or, with ?once=true, after the first; follow/ls lists the folders the
// daemon follows.
func (s *Server) followRoutes(d *node.Daemon) {
	s.Handle("follow", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		keep, _ := strconv.ParseBool(q.Get("keep"))
		once, _ := strconv.ParseBool(q.Get("once"))
		st := newStream(w)
		st.flush() // the client knows the daemon follows
		opts := node.FollowOptions{Keep: keep, Once: once, Fetch: fetchOptions(r, nil),
			Updated: func(u node.FollowUpdate) { st.send(event{Follow: &u}) }}
		st.finish(true, d.Follow(r.Context(), q.Get("arg"), q.Get("dir"), opts))
	})
	s.Handle("follow/ls", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, d.Following())
	})
}

// Follow asks the daemon to keep dir (an absolute path) at the newest
// version of name, calling fn with each update, until ctx ends (nil),
// the daemon goes or, with opts.Once, after one update.
func (c *Client) Follow(ctx context.Context, name, dir string, opts node.FollowOptions, fn func(node.FollowUpdate)) error {
	q := url.Values{"arg": {name}, "dir": {dir}, "keep": {strconv.FormatBool(opts.Keep)}, "once": {strconv.FormatBool(opts.Once)}}
	if opts.Fetch.Timeout > 0 {
		q.Set("timeout", opts.Fetch.Timeout.String())
	}
	err := c.events(ctx, "follow", q, nil, func(e event) {
		if e.Follow != nil && fn != nil {
			fn(*e.Follow)
		}
	}, nil)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Following lists the folders the daemon follows.
func (c *Client) Following(ctx context.Context) ([]node.FollowStatus, error) {
	var out []node.FollowStatus
	err := c.Call(ctx, "follow/ls", nil, nil, &out)
	return out, err
}
