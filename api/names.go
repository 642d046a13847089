package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
)

// namePublish publishes ?arg= (a path) under ?key= with ?lifetime= and
// ?ttl=.
func (s *Server) namePublish(w http.ResponseWriter, r *http.Request) {
	p, err := pathArg(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	q := r.URL.Query()
	opts := node.PublishOptions{Key: q.Get("key")}
	for name, d := range map[string]*time.Duration{"lifetime": &opts.Lifetime, "ttl": &opts.TTL} {
		if v := q.Get(name); v != "" {
			if *d, err = time.ParseDuration(v); err != nil {
				WriteError(w, errs.Errorf(errs.Invalid, "%s %q: %v", name, v, err))
				return
			}
		}
	}
	rec, err := s.api.Publish(r.Context(), p, opts)
	if err != nil && rec.Name != "" {
		// Published here but not in the DHT: the record and the error.
		e := errorOf(err)
		WriteJSON(w, publishJSON{NameRecord: rec, Err: &e})
		return
	}
	answer(w, publishJSON{NameRecord: rec}, err)
}

// publishJSON is publish's answer: the record, and the error of a record
// kept here that no DHT peer took.
type publishJSON struct {
	node.NameRecord
	Err *errorJSON `json:",omitempty"`
}

// nameResolve answers the record of the name in ?arg=.
func (s *Server) nameResolve(w http.ResponseWriter, r *http.Request) {
	rec, err := s.api.ResolveName(r.Context(), r.URL.Query().Get("arg"))
	answer(w, rec, err)
}

// Publish asks the daemon to publish value under opts.Key.
func (c *Client) Publish(ctx context.Context, value dag.Path, opts node.PublishOptions) (node.NameRecord, error) {
	q := url.Values{"arg": {value.String()}, "key": {opts.Key}}
	if opts.Lifetime > 0 {
		q.Set("lifetime", opts.Lifetime.String())
	}
	if opts.TTL > 0 {
		q.Set("ttl", opts.TTL.String())
	}
	var out publishJSON
	if err := c.Call(ctx, "name/publish", q, nil, &out); err != nil {
		return node.NameRecord{}, err
	}
	if out.Err != nil {
		return out.NameRecord, out.Err.err()
	}
	return out.NameRecord, nil
}

// ResolveName asks the daemon for the best record of name.
func (c *Client) ResolveName(ctx context.Context, name string) (node.NameRecord, error) {
	var out node.NameRecord
	err := c.Call(ctx, "name/resolve", url.Values{"arg": {name}}, nil, &out)
	return out, err
}
