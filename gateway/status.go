package gateway

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

var (
	//go:embed page.css
	pageCSS string
	//go:embed page.js
	pageJS string
	//go:embed page.tmpl
	pageTmpl string
)

// pageTemplate renders the status page and directory listings.
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"css":   func() template.CSS { return template.CSS(pageCSS) },
	"js":    func() template.JS { return template.JS(pageJS) },
	"human": humanBytes,
	"count": func(n int64) string { return strconv.FormatInt(n, 10) },
	"min":   func(a, b int64) int64 { return min(a, b) },
	"pct": func(a, b int64) string {
		return strconv.FormatFloat(100*float64(a)/float64(b), 'f', 1, 64) + "%"
	},
	"rate":  func(n int64) string { return humanBytes(n) + "/s" },
	"eta":   eta,
	"short": shortID,
	"when":  when,
}).Parse(pageTmpl))

// when is a time as the page shows it (the server's local time), or "–"
// for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.Local().Format(time.DateTime)
}

// eta is how long the rest of a transfer takes at its current rate, as
// the page's script writes it: "1m 05s", or "–" when not known.
func eta(bytes, total, rate int64) string {
	if total <= 0 || rate <= 0 || bytes >= total {
		return "–"
	}
	secs := (total - bytes + rate - 1) / rate
	switch {
	case secs >= 3600:
		return fmt.Sprintf("%dh %02dm", secs/3600, secs%3600/60)
	case secs >= 60:
		return fmt.Sprintf("%dm %02ds", secs/60, secs%60)
	}
	return fmt.Sprintf("%ds", secs)
}

// shortID abbreviates a PeerID as the page's script does: its first and
// last six characters.
func shortID(id string) string {
	if len(id) <= 14 {
		return id
	}
	return id[:6] + "…" + id[len(id)-6:]
}

// The pages carry their style and script inline, allowed by hash: no
// other script, style or connection can run in them.
var (
	pageCSP   = csp(false)
	statusCSP = csp(true)
)

func csp(script bool) string {
	hash := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
	}
	p := "default-src 'none'; style-src " + hash(pageCSS) + "; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if script {
		p += "; script-src " + hash(pageJS) + "; connect-src 'self'"
	}
	return p
}

// FollowStatus is a folder kept at the newest version of an IPNS name
// (share follow, config Follow).
type FollowStatus struct {
	Name     string
	Dir      string
	Cid      string // the version the folder is at ("" before the first)
	Sequence uint64
	Updated  time.Time // when that version was written (zero: not yet)
	Err      string    // why the last attempt failed, if it did
}

// statusJSON is the body of /api/status.json.
type statusJSON struct {
	Status
	Time time.Time // the server's clock, for rates
}

func (h *Handler) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	st := h.node.Status(r.Context())
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, "status", st); err != nil {
		httpError(w, http.StatusInternalServerError, "status page: "+err.Error())
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", statusCSP)
	hd.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

func (h *Handler) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	st := statusJSON{Status: h.node.Status(r.Context()), Time: time.Now()}
	b, err := json.Marshal(st)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "status: "+err.Error())
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	hd.Set("Cache-Control", "no-store")
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}
