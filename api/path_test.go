package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
)

// resolvingAPI resolves every path with segments to sub (a path whose
// last name is "nope" to a NoLinkError) and lists what it is asked to.
type resolvingAPI struct {
	node.API
	sub      cid.Cid
	resolved []string
	listed   []cid.Cid
}

func (a *resolvingAPI) Resolve(ctx context.Context, p dag.Path, opts node.FetchOptions) (cid.Cid, error) {
	a.resolved = append(a.resolved, p.String())
	if p.Base() == "nope" {
		return cid.Undef, &dag.NoLinkError{Path: p, Missing: len(p.Segments) - 1}
	}
	return a.sub, nil
}

func (a *resolvingAPI) Ls(ctx context.Context, c cid.Cid, opts node.FetchOptions) ([]node.Entry, error) {
	a.listed = append(a.listed, c)
	return []node.Entry{}, nil
}

// TestPathsCrossTheSocket: the client resolves a path through the daemon
// (a bare CID without asking it), a missing name comes back as the same
// not-found error, and the commands' ?arg= takes a path too, resolved
// before the command runs (for clients other than ours).
func TestPathsCrossTheSocket(t *testing.T) {
	root, sub := cid.MustParse(testCID), dag.Sum(dag.Raw, []byte("sub"))
	a := &resolvingAPI{sub: sub}
	cl := serve(t, a)
	ctx := context.Background()
	p, _ := dag.ParsePath("/ipfs/" + testCID + "/a/b")
	if c, err := cl.Resolve(ctx, p, node.FetchOptions{}); err != nil || c != sub {
		t.Fatalf("Resolve(%s) = %v, %v; want %v", p, c, err, sub)
	}
	if c, err := cl.Resolve(ctx, dag.PathOf(root), node.FetchOptions{}); err != nil || c != root || len(a.resolved) != 1 {
		t.Fatalf("Resolve of a bare CID = %v, %v, after %d calls to the daemon", c, err, len(a.resolved))
	}
	p, _ = dag.ParsePath(testCID + "/a/nope")
	want := &dag.NoLinkError{Path: p, Missing: 1}
	if _, err := cl.Resolve(ctx, p, node.FetchOptions{}); err == nil || err.Error() != want.Error() || errs.KindOf(err) != errs.NotFound {
		t.Fatalf("Resolve of a missing name: %v, want %v", err, want)
	}

	srv := NewServer(a, nil)
	for arg, listed := range map[string]cid.Cid{testCID + "/a/b": sub, "/ipfs/" + testCID: root} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v0/ls?"+url.Values{"arg": {arg}}.Encode(), nil))
		if rec.Code != 200 || a.listed[len(a.listed)-1] != listed {
			t.Errorf("ls?arg=%s: %d %s, listed %v; want %v", arg, rec.Code, rec.Body, a.listed, listed)
		}
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v0/ls?arg=/ipns/example.com", nil))
	var e errorJSON
	json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Code != http.StatusNotImplemented || !errs.Is(errs.Unsupported, e.err()) {
		t.Errorf("ls?arg=/ipns/example.com: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v0/ls?arg=/ipns/x", nil))
	e = errorJSON{}
	json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Code != http.StatusBadRequest || !errs.Is(errs.Invalid, e.err()) {
		t.Errorf("ls?arg=/ipns/x: %d %s", rec.Code, rec.Body)
	}
}
