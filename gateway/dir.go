package gateway

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
)

// listing is the data of a directory listing page.
type listing struct {
	Path    string // "/ipfs/<cid>/a/b/", unescaped, for display
	Crumbs  []crumb
	Parent  string // href of the parent directory, "" at the root
	Cid     string
	Entries []listEntry
	Total   string
}

type crumb struct{ Name, Href string }

type listEntry struct {
	Name, Href, Size, Cid, CidHref, Short string
	Dir                                   bool
}

// serveDir serves directory c: its index.html if it has one, a listing
// otherwise. Without a trailing slash it redirects to the path with one,
// so that relative links in an index.html resolve inside the directory.
func (q *request) serveDir(c cid.Cid) error {
	if !q.dir {
		u := *q.r.URL
		u.Path += "/"
		u.RawPath = ""
		http.Redirect(q.w, q.r, u.RequestURI(), http.StatusMovedPermanently)
		return nil
	}
	idx, err := dag.Lookup(q.ctx, q.g, c, "index.html")
	switch {
	case err == nil:
		return q.serveFile(idx.Hash, "index.html")
	case !errors.Is(err, dag.ErrNoLink):
		return err
	}
	etag := `"DirIndex-1-` + c.String() + `"`
	if q.notModified(etag) {
		return nil
	}
	ents, err := dag.ReadDir(q.ctx, q.g, c)
	if err != nil {
		return err
	}
	page := q.listing(c, ents)
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, "listing", page); err != nil {
		return err
	}
	h := q.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("ETag", etag)
	// The listing's look may change with a new version, unlike the content.
	h.Set("Cache-Control", "public, max-age=604800")
	h.Set("Content-Security-Policy", pageCSP)
	if q.r.Method != http.MethodHead {
		q.w.Write(buf.Bytes())
	}
	return nil
}

func (q *request) listing(c cid.Cid, ents []dag.DirEntry) listing {
	root, segs := q.path.Root.String(), q.path.Segments
	base := "/ipfs/" + escapePath(append([]string{root}, segs...)...) + "/"
	l := listing{
		Path: "/ipfs/" + q.path.String() + "/",
		Cid:  c.String(),
	}
	l.Crumbs = append(l.Crumbs, crumb{Name: root, Href: "/ipfs/" + root + "/"})
	for i, s := range segs {
		l.Crumbs = append(l.Crumbs, crumb{Name: s, Href: "/ipfs/" + escapePath(append([]string{root}, segs[:i+1]...)...) + "/"})
	}
	if len(segs) > 0 {
		l.Parent = l.Crumbs[len(l.Crumbs)-2].Href
	}
	var total uint64
	for _, e := range ents {
		le := listEntry{
			Name:    e.Name,
			Href:    base + escapePath(e.Name),
			Cid:     e.Cid.String(),
			CidHref: "/ipfs/" + e.Cid.String(),
			Dir:     e.Type == dag.TypeDirectory,
		}
		le.Short = shortCID(le.Cid)
		if le.Dir {
			le.Href += "/"
			le.Size = "—"
		} else {
			le.Size = humanBytes(int64(e.Size))
			total += e.Size
		}
		l.Entries = append(l.Entries, le)
	}
	l.Total = humanBytes(int64(total))
	return l
}

// shortCID abbreviates a CID for display; the full one is in the link.
func shortCID(s string) string {
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}

// humanBytes formats n in binary units, as the status page's script does.
func humanBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}
