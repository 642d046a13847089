package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/car"
	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/metrics"
)

func randBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// fakeNode serves blocks from a MemStore; blocks in hang never arrive.
type fakeNode struct {
	store *dag.MemStore
	mu    sync.Mutex
	hang  map[cid.Cid]bool
	polls int
	stat  func(polls int) Status
}

func (f *fakeNode) Getter(ctx context.Context) share.Getter { return &hangGetter{f} }

// copyNode hands out a getter that copies each block into a buffer of its
// own and takes the buffer back on Release, as the blockstore's does.
type copyNode struct {
	*fakeNode
	free chan []byte
}

func newCopyNode(f *fakeNode) copyNode { return copyNode{f, make(chan []byte, 16)} }

func (n copyNode) Getter(ctx context.Context) share.Getter { return copyGetter(n) }

type copyGetter copyNode

func (g copyGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	b, err := g.store.Get(ctx, c)
	if err != nil {
		return b, err
	}
	var buf []byte
	select {
	case buf = <-g.free:
	default:
	}
	return share.NewBlock(append(buf[:0], b.Data...), false, g.put), nil
}

func (g copyGetter) put(b []byte) {
	select {
	case g.free <- b:
	default:
	}
}

func (g copyGetter) Has(ctx context.Context, c cid.Cid) (bool, error) { return g.store.Has(ctx, c) }

func (f *fakeNode) Status(ctx context.Context) Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	if f.stat == nil {
		return Status{ID: "12D3KooWTestNode"}
	}
	return f.stat(f.polls)
}

type hangGetter struct{ f *fakeNode }

func (g *hangGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	g.f.mu.Lock()
	hang := g.f.hang[c]
	g.f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return share.Block{}, ctx.Err()
	}
	return g.f.store.Get(ctx, c)
}

func (g *hangGetter) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return g.f.store.Has(ctx, c)
}

// fixture is a gateway over a small tree.
type fixture struct {
	node  *fakeNode
	srv   *httptest.Server
	h     *Handler
	reg   *metrics.Registry
	files map[string][]byte
	tree  cid.Cid // the root directory
	big   cid.Cid // a 3 MiB file of 1 MiB leaves
	small cid.Cid // a 100 KiB file of 1 KiB leaves (a deep DAG)
}

const chunk = 1024

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{node: &fakeNode{store: dag.NewMemStore(), hang: make(map[cid.Cid]bool)}, reg: metrics.NewRegistry()}
	f.files = map[string][]byte{
		"hello.txt":              []byte("hello, world\n"),
		"data.bin":               randBytes(1, 100*1024),
		"page.html":              []byte("<!doctype html><title>x</title><p>hi"),
		"noext":                  []byte("%PDF-1.4 not really"),
		`<b>&"q'.txt`:            []byte("escape me"),
		"a b&c/inner.json":       []byte(`{"a":1}`),
		"site/index.html":        []byte("<!doctype html><p>index page"),
		"site/style.css":         []byte("p{color:red}"),
		"empty.txt":              nil,
		"deep/er/est/leaf.txt":   []byte("deep"),
		"unicode-ÄÖ 日本.txt":      []byte("unicode name"),
		"percent%2Fslash%20.txt": []byte("percent name"),
	}
	dir := t.TempDir()
	for name, data := range f.files {
		p := filepath.Join(dir, "root", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	sp, _ := chunker.FixedSize(chunk)
	var err error
	f.tree, err = dag.ImportPath(ctx, filepath.Join(dir, "root"), f.node.store, dag.ImportOptions{Chunker: sp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.small = f.importFile(t, f.files["data.bin"], chunk)
	f.files["big"] = randBytes(2, 3<<20+12345)
	f.big = f.importFile(t, f.files["big"], 1<<20)
	f.h = New(f.node, Options{Metrics: f.reg, BlockTimeout: 200 * time.Millisecond})
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) importFile(t *testing.T, data []byte, size int) cid.Cid {
	t.Helper()
	sp, err := chunker.FixedSize(size)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := dag.ImportFile(context.Background(), bytes.NewReader(data), f.node.store, dag.ImportOptions{Chunker: sp})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// do sends a request to the test server, not following redirects.
func (f *fixture) do(t *testing.T, method, target string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	cl := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       20 * time.Second,
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, target, err)
	}
	return resp, body
}

// raw sends a request line as it is, for paths a client would clean.
func (f *fixture) raw(t *testing.T, target string) int {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Code
}

func TestFiles(t *testing.T) {
	f := newFixture(t)
	tr := f.tree.String()
	for _, tc := range []struct {
		path, file, ctype string
	}{
		{"/ipfs/" + tr + "/hello.txt", "hello.txt", "text/plain; charset=utf-8"},
		{"/ipfs/" + tr + "/data.bin", "data.bin", "application/octet-stream"},
		{"/ipfs/" + tr + "/page.html", "page.html", "text/html; charset=utf-8"},
		{"/ipfs/" + tr + "/noext", "noext", "application/pdf"}, // sniffed
		{"/ipfs/" + tr + "/%3Cb%3E&%22q%27.txt", `<b>&"q'.txt`, "text/plain; charset=utf-8"},
		{"/ipfs/" + tr + "/a%20b&c/inner.json", "a b&c/inner.json", "application/json"},
		{"/ipfs/" + tr + "/empty.txt", "empty.txt", "text/plain; charset=utf-8"},
		{"/ipfs/" + tr + "//deep/er/est/leaf.txt", "deep/er/est/leaf.txt", "text/plain; charset=utf-8"},
		{"/ipfs/" + tr + "/unicode-%C3%84%C3%96%20%E6%97%A5%E6%9C%AC.txt", "unicode-ÄÖ 日本.txt", "text/plain; charset=utf-8"},
		{"/ipfs/" + tr + "/percent%252Fslash%2520.txt", "percent%2Fslash%20.txt", "text/plain; charset=utf-8"},
		{"/ipfs/" + f.small.String(), "data.bin", "application/octet-stream"},
		{"/ipfs/" + f.big.String(), "big", "application/octet-stream"},
		{"/ipfs/" + f.big.String() + "?filename=x.txt", "big", "text/plain; charset=utf-8"},
	} {
		resp, body := f.do(t, "GET", tc.path)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d: %s", tc.path, resp.StatusCode, body)
			continue
		}
		if !bytes.Equal(body, f.files[tc.file]) {
			t.Errorf("%s: body differs (%d bytes, want %d)", tc.path, len(body), len(f.files[tc.file]))
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if resp.Header.Get("Cache-Control") != "public, max-age=29030400, immutable" {
			t.Errorf("%s: Cache-Control %q", tc.path, resp.Header.Get("Cache-Control"))
		}
		if et := resp.Header.Get("ETag"); !strings.HasPrefix(et, `"b`) || !strings.HasSuffix(et, `"`) {
			t.Errorf("%s: ETag %q", tc.path, et)
		}
	}
	// The ETag is the CID of the file itself.
	resp, _ := f.do(t, "GET", "/ipfs/"+f.big.String())
	if et := resp.Header.Get("ETag"); et != `"`+f.big.String()+`"` {
		t.Errorf("ETag %q, want the CID", et)
	}
	resp, _ = f.do(t, "GET", "/ipfs/"+f.big.String()+"?filename=a%20b.bin&download=true")
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="a b.bin"` {
		t.Errorf("Content-Disposition %q", cd)
	}
}

func TestHeadAndNotModified(t *testing.T) {
	f := newFixture(t)
	p := "/ipfs/" + f.big.String()
	resp, body := f.do(t, "HEAD", p)
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(f.files["big"])) {
		t.Errorf("HEAD: status %d, %d body bytes, Content-Length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
	etag := `"` + f.big.String() + `"`
	for _, inm := range []string{etag, `"x", ` + etag, "W/" + etag, "*"} {
		resp, body = f.do(t, "GET", p, "If-None-Match", inm)
		if resp.StatusCode != 304 || len(body) != 0 || resp.Header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: status %d, ETag %q", inm, resp.StatusCode, resp.Header.Get("ETag"))
		}
	}
	resp, _ = f.do(t, "GET", p, "If-None-Match", `"other"`)
	if resp.StatusCode != 200 {
		t.Errorf("other ETag: status %d", resp.StatusCode)
	}
	// 304 for a path, and for raw and car with their own ETags.
	resp, _ = f.do(t, "GET", "/ipfs/"+f.tree.String()+"/hello.txt", "If-None-Match", `"`+dag.Sum(dag.Raw, f.files["hello.txt"]).String()+`"`)
	if resp.StatusCode != 304 {
		t.Errorf("path: status %d", resp.StatusCode)
	}
	resp, _ = f.do(t, "GET", p+"?format=raw", "If-None-Match", `"`+f.big.String()+`.raw"`)
	if resp.StatusCode != 304 {
		t.Errorf("raw: status %d", resp.StatusCode)
	}
	resp, _ = f.do(t, "GET", p+"?format=car", "If-None-Match", `"`+f.big.String()+`.car"`)
	if resp.StatusCode != 304 {
		t.Errorf("car: status %d", resp.StatusCode)
	}
	resp, body = f.do(t, "HEAD", p+"?format=car")
	if resp.StatusCode != 200 || len(body) != 0 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.ipld.car") {
		t.Errorf("HEAD car: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestRanges(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		file string
		c    cid.Cid
	}{{"data.bin", f.small}, {"big", f.big}} {
		data := f.files[tc.file]
		p := "/ipfs/" + tc.c.String()
		n := len(data)
		single := []struct {
			rng        string
			start, end int // inclusive
		}{
			{"bytes=0-0", 0, 0},
			{"bytes=100-1999", 100, 1999},
			{"bytes=1023-1024", 1023, 1024},
			{"bytes=-100", n - 100, n - 1},
			{"bytes=5000-", 5000, n - 1},
			{"bytes=" + itoa(n-10) + "-" + itoa(n+100), n - 10, n - 1},
		}
		for _, r := range single {
			resp, body := f.do(t, "GET", p, "Range", r.rng)
			want := data[r.start : r.end+1]
			if resp.StatusCode != 206 || !bytes.Equal(body, want) {
				t.Errorf("%s %s: status %d, %d bytes (want %d)", tc.file, r.rng, resp.StatusCode, len(body), len(want))
			}
			if cr := resp.Header.Get("Content-Range"); cr != "bytes "+itoa(r.start)+"-"+itoa(r.end)+"/"+itoa(n) {
				t.Errorf("%s %s: Content-Range %q", tc.file, r.rng, cr)
			}
		}
		resp, _ := f.do(t, "GET", p, "Range", "bytes="+itoa(n)+"-")
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("%s: range past the end: status %d", tc.file, resp.StatusCode)
		}

		// Several ranges: multipart/byteranges, in the order asked.
		ranges := [][2]int{{0, 9}, {n - 50, n - 1}, {1000, 3000}}
		resp, body := f.do(t, "GET", p, "Range", "bytes=0-9,"+itoa(n-50)+"-,1000-3000")
		mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode != 206 || err != nil || mt != "multipart/byteranges" {
			t.Fatalf("%s multirange: status %d, type %q", tc.file, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for i := 0; ; i++ {
			part, err := mr.NextPart()
			if err == io.EOF {
				if i != len(ranges) {
					t.Errorf("%s: %d parts, want %d", tc.file, i, len(ranges))
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(part)
			r := ranges[i]
			if !bytes.Equal(got, data[r[0]:r[1]+1]) {
				t.Errorf("%s: part %d: %d bytes differ", tc.file, i, len(got))
			}
			if cr := part.Header.Get("Content-Range"); cr != "bytes "+itoa(r[0])+"-"+itoa(r[1])+"/"+itoa(n) {
				t.Errorf("%s: part %d: Content-Range %q", tc.file, i, cr)
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSeqReader(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	data := f.files["big"]
	fr, err := dag.NewFileReader(ctx, f.node.store, f.big)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fr2, _ := dag.NewFileReader(cctx, f.node.store, f.big)
	_ = fr
	s := &seqReader{ctx: ctx, g: f.node.store, root: f.big, fr: fr2, cancel: cancel, size: fr2.Size()}
	defer s.Close()
	buf := make([]byte, 3000)
	for _, off := range []int64{0, 3000, 1<<20 - 5, 100, int64(len(data)) - 10, 2 << 20} {
		if _, err := s.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		n, err := io.ReadFull(s, buf)
		want := data[off:min(off+3000, int64(len(data)))]
		if (err != nil && err != io.ErrUnexpectedEOF) || !bytes.Equal(buf[:n], want) {
			t.Fatalf("at %d: %d bytes, %v", off, n, err)
		}
	}
	if end, _ := s.Seek(0, io.SeekEnd); end != int64(len(data)) {
		t.Fatalf("SeekEnd %d", end)
	}
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read at end: %d, %v", n, err)
	}
}

func TestDirectories(t *testing.T) {
	f := newFixture(t)
	tr := f.tree.String()
	resp, _ := f.do(t, "GET", "/ipfs/"+tr+"/a%20b&c?x=1")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "/ipfs/"+tr+"/a%20b&c/?x=1" {
		t.Errorf("no slash: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := f.do(t, "GET", "/ipfs/"+tr+"/")
	page := string(body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("listing: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`href="/ipfs/` + tr + `/hello.txt">hello.txt</a>`,
		`href="/ipfs/` + tr + `/%3Cb%3E&amp;%22q%27.txt">&lt;b&gt;&amp;&#34;q&#39;.txt</a>`,
		`href="/ipfs/` + tr + `/a%20b&amp;c/">a b&amp;c/</a>`,
		`href="/ipfs/` + tr + `/percent%252Fslash%2520.txt"`,
		`<td class="num">100.0 KiB</td>`,
		`<td class="num">13 B</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("listing lacks %s", want)
		}
	}
	if strings.Contains(page, "<b>") || strings.Contains(page, "<script") {
		t.Error("listing has an unescaped name or a script")
	}
	// A subdirectory's listing links to its parent.
	_, body = f.do(t, "GET", "/ipfs/"+tr+"/deep/er/")
	if !strings.Contains(string(body), `href="/ipfs/`+tr+`/deep/">..</a>`) || !strings.Contains(string(body), `href="/ipfs/`+tr+`/deep/er/est/"`) {
		t.Errorf("subdirectory listing:\n%s", body)
	}
	// A directory with index.html serves it.
	resp, body = f.do(t, "GET", "/ipfs/"+tr+"/site/")
	if resp.StatusCode != 200 || string(body) != string(f.files["site/index.html"]) || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("index.html: status %d, type %q, body %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = f.do(t, "HEAD", "/ipfs/"+tr+"/")
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD listing: status %d, %d bytes", resp.StatusCode, len(body))
	}
	et := resp.Header.Get("ETag")
	resp, _ = f.do(t, "GET", "/ipfs/"+tr+"/", "If-None-Match", et)
	if resp.StatusCode != 304 {
		t.Errorf("listing If-None-Match: status %d", resp.StatusCode)
	}
}

func TestRaw(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, c := range []cid.Cid{f.tree, f.big, dag.Sum(dag.Raw, f.files["hello.txt"])} {
		b, _ := f.node.store.Get(ctx, c)
		want := b.Data
		for _, hdr := range [][]string{nil, {"Accept", "application/vnd.ipld.raw"}} {
			target := "/ipfs/" + c.String()
			if hdr == nil {
				target += "?format=raw"
			}
			resp, body := f.do(t, "GET", target, hdr...)
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("%s: status %d, %d bytes", target, resp.StatusCode, len(body))
			}
			if resp.Header.Get("Content-Type") != "application/vnd.ipld.raw" || resp.Header.Get("ETag") != `"`+c.String()+`.raw"` {
				t.Errorf("%s: type %q, ETag %q", target, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"))
			}
		}
	}
	// format=raw after a path gives the block the path ends at.
	resp, body := f.do(t, "GET", "/ipfs/"+f.tree.String()+"/hello.txt?format=raw")
	if resp.StatusCode != 200 || !bytes.Equal(body, f.files["hello.txt"]) {
		t.Errorf("path raw: status %d, %q", resp.StatusCode, body)
	}
	resp, _ = f.do(t, "GET", "/ipfs/"+f.big.String()+"?format=tar")
	if resp.StatusCode != 400 {
		t.Errorf("format=tar: status %d", resp.StatusCode)
	}
}

func TestCAR(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, c := range []cid.Cid{f.tree, f.big, f.small} {
		resp, body := f.do(t, "GET", "/ipfs/"+c.String()+"?format=car")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.ipld.car; version=1" {
			t.Fatalf("%s: status %d, type %q: %.200s", c, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		r, err := car.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if roots := r.Header().Roots; len(roots) != 1 || roots[0] != c {
			t.Fatalf("roots %v", roots)
		}
		got := make(map[cid.Cid]bool)
		for {
			bc, data, err := r.Next() // verifies the block
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if got[bc] {
				t.Errorf("block %s twice", bc)
			}
			got[bc] = true
			if err := dag.Verify(bc, data); err != nil {
				t.Fatal(err)
			}
		}
		want := 0
		err = dag.Walk(ctx, f.node.store, c, dag.WalkOptions{}, func(wc cid.Cid) error {
			want++
			if !got[wc] {
				t.Errorf("block %s missing from the CAR", wc)
			}
			return nil
		})
		if err != nil || want != len(got) {
			t.Errorf("%s: %d blocks in the CAR, %d in the DAG (%v)", c, len(got), want, err)
		}
	}
	// By Accept header, under a path.
	resp, body := f.do(t, "GET", "/ipfs/"+f.tree.String()+"/hello.txt", "Accept", "application/vnd.ipld.car")
	if resp.StatusCode != 200 {
		t.Fatalf("Accept car: status %d", resp.StatusCode)
	}
	dst := dag.NewMemStore()
	roots, err := car.Import(ctx, bytes.NewReader(body), dst)
	if err != nil || len(roots) != 1 || dst.Len() != 1 {
		t.Fatalf("import: %v, %v, %d blocks", roots, err, dst.Len())
	}
}

func TestMethods(t *testing.T) {
	f := newFixture(t)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, p := range []string{"/ipfs/" + f.big.String(), "/", "/api/status.json", "/metrics", "/nothing"} {
			resp, _ := f.do(t, m, p)
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: status %d, Allow %q", m, p, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	tr := f.tree.String()
	absent := dag.Sum(dag.Raw, []byte("absent"))
	for _, tc := range []struct {
		target string
		code   int
	}{
		{"/ipfs/notacid", 400},
		{"/ipfs/bafy", 400},
		{"/ipfs/" + tr + "/../" + tr, 400},
		{"/ipfs/" + tr + "/deep/../hello.txt", 400},
		{"/ipfs/" + tr + "/%2e%2e/hello.txt", 400},
		{"/ipfs/" + tr + "/deep%2F..%2F..%2Fhello.txt", 400},
		{"/ipfs/" + tr + "/./hello.txt", 400},
		{"/ipfs/" + tr + "/..%5Chello.txt", 404},
		{"/ipfs/" + tr + "/nope.txt", 404},
		{"/ipfs/" + tr + "/hello.txt/more", 404},
		{"/ipfs/" + absent.String(), 404},
		{"/ipfs/" + absent.String() + "?format=raw", 404},
		{"/ipfs/" + absent.String() + "?format=car", 404},
		{"/ipfs/" + absent.String() + "/x", 404},
		{"/ipfs/", 404},
		{"/ipns/x", 400},
		{"/ipns/example.com", 501},
		// A name this gateway has no Names to resolve.
		{"/ipns/k51qzi5uqu5dmc4pblt5bs1pvjb6f9nzz247f1tqjc1cdaxbasmp1xz06szbaz", 404},
		{"/etc/passwd", 404},
		{"/../../etc/passwd", 404},
	} {
		if code := f.raw(t, tc.target); code != tc.code {
			t.Errorf("%s: status %d, want %d", tc.target, code, tc.code)
		}
	}
}

// TestMissingSegmentNamed: a 404 for a path says which name is missing
// under what, as every command's error does (dag.Resolve's).
func TestMissingSegmentNamed(t *testing.T) {
	f := newFixture(t)
	tr := f.tree.String()
	for target, want := range map[string]string{
		"/ipfs/" + tr + "/deep/nope/x":     `no link named "nope" under ` + tr + "/deep",
		"/ipfs/" + tr + "/hello.txt/more/": `no link named "more" under ` + tr + "/hello.txt",
	} {
		resp, body := f.do(t, "GET", target)
		if resp.StatusCode != 404 || !strings.Contains(string(body), want) {
			t.Errorf("%s: status %d, %q; want 404 with %q", target, resp.StatusCode, body, want)
		}
	}
}

func TestCorruptAndTimeout(t *testing.T) {
	f := newFixture(t)
	hello := dag.Sum(dag.Raw, f.files["hello.txt"])
	f.node.store.Set(hello, []byte("jello, world\n"))
	for _, target := range []string{"/ipfs/" + f.tree.String() + "/hello.txt", "/ipfs/" + hello.String() + "?format=raw", "/ipfs/" + hello.String() + "?format=car"} {
		resp, body := f.do(t, "GET", target)
		if resp.StatusCode != 502 || !strings.Contains(string(body), hello.String()) {
			t.Errorf("%s: status %d: %s", target, resp.StatusCode, body)
		}
	}
	// A block that never arrives is a gateway timeout (504, as kubo
	// answers) once BlockTimeout passes, not a path that does not exist.
	f.node.mu.Lock()
	f.node.hang[f.small] = true
	f.node.mu.Unlock()
	start := time.Now()
	resp, _ := f.do(t, "GET", "/ipfs/"+f.small.String())
	if resp.StatusCode != 504 || time.Since(start) > 5*time.Second {
		t.Errorf("hanging block: status %d after %v", resp.StatusCode, time.Since(start))
	}
}

// TestCutStream checks that a response whose blocks go missing halfway is
// cut, not completed with a success status and wrong length.
func TestCutStream(t *testing.T) {
	f := newFixture(t)
	var last cid.Cid
	dag.Walk(context.Background(), f.node.store, f.big, dag.WalkOptions{}, func(c cid.Cid) error { last = c; return nil })
	f.node.store.Delete(last)
	for _, target := range []string{"/ipfs/" + f.big.String(), "/ipfs/" + f.big.String() + "?format=car"} {
		resp, err := http.Get(f.srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("%s: status %d, %d bytes read without error", target, resp.StatusCode, len(body))
		}
	}
}

// TestStreamMemory checks that serving a file does not buffer it: the
// memory allocated is bounded by the read-ahead, not the file size.
func TestStreamMemory(t *testing.T) {
	f := newFixture(t)
	data := randBytes(9, 64<<20)
	c := f.importFile(t, data, 1<<20)
	srv := httptest.NewServer(New(newCopyNode(f.node), Options{}))
	defer srv.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := http.Get(srv.URL + "/ipfs/" + c.String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("serving 64 MiB allocated %.1f MiB", float64(alloc)/(1<<20))
	if alloc > 24<<20 {
		t.Errorf("serving 64 MiB allocated %d MiB", alloc>>20)
	}
}

func testStatus(polls int) Status {
	return Status{
		ID:        "12D3KooWStatusPageNodeID",
		Addresses: []string{"/ip4/127.0.0.1/tcp/4001", "/ip6/::1/tcp/4001"},
		Peers: []PeerStatus{
			{ID: "12D3KooWPeerOne", Addr: "/ip4/192.168.1.7/tcp/4001", Protocol: "share",
				RateIn: 3 << 20, RateOut: 700 << 10, BytesIn: 75 << 20, BlocksIn: 300, BytesOut: 2 << 30, BlocksOut: 8192},
			{ID: "12D3KooW<script>alert(1)</script>", Addr: "/ip4/10.0.0.2/tcp/4001/p2p-circuit", Protocol: "bitswap", Relayed: true},
		},
		Traffic: Traffic{RateIn: 3 << 20, RateOut: 700 << 10, BytesIn: 5 << 30, BytesOut: 2 << 30,
			In: []int64{0, 1 << 20, 3 << 20}, Out: []int64{700 << 10, 700 << 10, 700 << 10}},
		StorageUsed: 3 << 30,
		StorageMax:  10 << 30,
		Blocks:      12345,
		Pins: []PinStatus{
			{Cid: "bafkr4ihello", Mode: "recursive", Name: "photos"},
			{Cid: "bafkr4iworld", Mode: "direct"},
		},
		Following: []FollowStatus{
			{Name: "k51qzi5uqu5dfollowedname", Dir: "/srv/followed-site", Cid: "bafybeifollowed", Sequence: 7,
				Updated: time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)},
			{Name: "k51qzi5uqu5dnotyet", Dir: "/srv/<b>notyet</b>", Err: "no valid record found"},
		},
		Transfers: []Transfer{{
			Cid:     "bafybeitransfer",
			Bytes:   int64(min(polls, 4)) * 25 << 20,
			Total:   100 << 20,
			Peers:   3,
			Started: time.Now().Add(-10 * time.Second),
			Rate:    5 << 20,
			From: []TransferPeer{
				{Peer: "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK", Protocol: "share", Blocks: 60, Bytes: 15 << 20},
				{Peer: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", Protocol: "bitswap", Blocks: 40, Bytes: 10 << 20},
			},
		}},
	}
}

func TestStatusPage(t *testing.T) {
	f := newFixture(t)
	f.node.stat = testStatus
	resp, body := f.do(t, "GET", "/")
	page := string(body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		"12D3KooWStatusPageNodeID", "12D3KooWPeerOne", "/ip4/192.168.1.7/tcp/4001", "/ip6/::1/tcp/4001",
		"3.0 GiB", "of 10.0 GiB (30.0%)", "12345", "photos", "recursive", `href="/ipfs/bafkr4ihello/"`,
		"bafybeitransfer", "25.0%", "25.0 MiB / 100.0 MiB", "12D3KooW&lt;script&gt;",
		// The node's current rates and totals, each transfer's rate, ETA
		// and providers, each peer's figures.
		"↓ 3.0 MiB/s", "↑ 700.0 KiB/s", "5.0 GiB in · 2.0 GiB served", `id="graph"`,
		`<td class="num">5.0 MiB/s</td><td class="num">15s</td>`,
		"12D3Ko…rRJsNK", "15.0 MiB · share", "12D3Ko…CVe2Xo", "10.0 MiB · bitswap",
		`<td>share</td>`, `<td class="num">3.0 MiB/s</td><td class="num">700.0 KiB/s</td>`,
		"75.0 MiB · 300 blocks", "2.0 GiB · 8192 blocks", `<span class="tag">relayed</span>`,
		// The folders followed: name, folder, version, sequence, time
		// and the last error.
		`id="following-count">2<`, "k51qzi…edname", "/srv/followed-site", `href="/ipfs/bafybeifollowed/"`,
		`<td class="num">7</td><td>2026-01-02 03:04:05</td>`, "/srv/&lt;b&gt;notyet&lt;/b&gt;", "<td>–</td><td class=\"num\">0</td><td>–</td><td>no valid record found</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("unescaped peer ID")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}

	resp, body = f.do(t, "GET", "/api/status.json")
	var st statusJSON
	if err := json.Unmarshal(body, &st); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status.json: %v, type %q", err, resp.Header.Get("Content-Type"))
	}
	if st.ID != "12D3KooWStatusPageNodeID" || len(st.Peers) != 2 || st.Transfers[0].Bytes != 50<<20 || st.Time.IsZero() {
		t.Errorf("status.json: %+v", st)
	}
	if tr := st.Transfers[0]; tr.Rate != 5<<20 || len(tr.From) != 2 || tr.From[1].Protocol != "bitswap" ||
		st.Traffic.RateOut != 700<<10 || len(st.Traffic.In) != 3 || st.Peers[0].BlocksOut != 8192 || !st.Peers[1].Relayed {
		t.Errorf("status.json lacks the rates and per-peer figures: %+v", st)
	}
}

// TestETA: a transfer's ETA is what is left over its current rate, and
// unknown without a total or a rate.
func TestETA(t *testing.T) {
	for _, c := range []struct {
		bytes, total, rate int64
		want               string
	}{
		{25, 100, 5, "15s"}, {0, 100, 3, "34s"}, {0, 3600, 50, "1m 12s"}, {0, 7500, 1, "2h 05m"},
		{10, 0, 5, "–"}, {10, 100, 0, "–"}, {100, 100, 5, "–"},
	} {
		if got := eta(c.bytes, c.total, c.rate); got != c.want {
			t.Errorf("eta(%d, %d, %d) = %q, want %q", c.bytes, c.total, c.rate, got, c.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	f.reg.NewCounter("share_test_total", "A test counter.").Add(3)
	resp, body := f.do(t, "GET", "/metrics")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "share_test_total 3\n") || resp.Header.Get("Content-Type") != metrics.ContentType {
		t.Errorf("metrics: status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	h := New(f.node, Options{}) // no registry: no /metrics
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Errorf("metrics without a registry: status %d", rec.Code)
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errs.E(errs.NotFound, dag.Sum(dag.Raw, nil)), 404},
		{dag.ErrNoLink, 404},
		{context.DeadlineExceeded, 504},
		{dag.ErrHashMismatch, 502},
		{dag.ErrInvalidNode, 502},
		{dag.ErrUnsupported, 501},
		{errors.New("disk on fire"), 500},
	} {
		if got := statusOf(tc.err); got != tc.code {
			t.Errorf("%v: %d, want %d", tc.err, got, tc.code)
		}
	}
}

func TestStatusHosts(t *testing.T) {
	f := newFixture(t)
	h := New(f.node, Options{StatusHosts: []string{"share.example"}})
	for _, tc := range []struct {
		host string
		code int
	}{
		{"127.0.0.1:8080", 200},
		{"[::1]:8080", 200},
		{"192.168.1.5", 200},
		{"localhost:8080", 200},
		{"node.localhost", 200},
		{"share.example:80", 200},
		{"evil.example:8080", 403},
		{"127.0.0.1.evil.example", 403},
	} {
		for _, p := range []string{"/", "/api/status.json"} {
			req := httptest.NewRequest("GET", p, nil)
			req.Host = tc.host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Errorf("%s%s: status %d, want %d", tc.host, p, rec.Code, tc.code)
			}
		}
	}
	// Content answers under any name.
	req := httptest.NewRequest("GET", "/ipfs/"+f.big.String()+"?format=raw", nil)
	req.Host = "evil.example"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("content under another name: status %d", rec.Code)
	}
}

func BenchmarkServeFile(b *testing.B) {
	store := dag.NewMemStore()
	data := randBytes(12, 16<<20)
	c, _, err := dag.ImportFile(context.Background(), bytes.NewReader(data), store, dag.ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(New(newCopyNode(&fakeNode{store: store}), Options{}))
	defer srv.Close()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		resp, err := http.Get(srv.URL + "/ipfs/" + c.String())
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(data)) {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}
