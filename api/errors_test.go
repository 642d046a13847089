package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/pin"
)

// failingAPI answers the commands the test needs with its error; the
// others are not called (a nil node.API).
type failingAPI struct {
	node.API
	err error
	// sent is what Cat writes before it fails.
	sent []byte
}

func (f *failingAPI) Cat(ctx context.Context, c cid.Cid, w io.Writer, opts node.FetchOptions) (int64, error) {
	n, _ := w.Write(f.sent)
	return int64(n), f.err
}

func (f *failingAPI) Export(ctx context.Context, c cid.Cid, w io.Writer, opts node.FetchOptions) error {
	w.Write(f.sent)
	return f.err
}

func (f *failingAPI) Get(ctx context.Context, c cid.Cid, out string, opts node.GetOptions) error {
	return f.err
}

func (f *failingAPI) PinAdd(ctx context.Context, c cid.Cid, mode pin.Mode, name string, opts node.FetchOptions) error {
	return f.err
}

func (f *failingAPI) Ls(ctx context.Context, c cid.Cid, opts node.FetchOptions) ([]node.Entry, error) {
	return nil, f.err
}

// serve runs a Server for a on a unix socket and returns its client.
func serve(t *testing.T, a node.API) *Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sock := filepath.Join(t.TempDir(), "api.sock")
	_, errc, err := ServeUnix(ctx, NewServer(a, nil), sock)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-errc
	})
	return c
}

const testCID = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"

// TestErrorKindsCrossTheSocket: every way an error comes back from the
// daemon (a JSON answer, the final event of a stream, the trailers after
// bytes) keeps its text, its kind and its reason.
func TestErrorKindsCrossTheSocket(t *testing.T) {
	c := cid.MustParse(testCID)
	full := fmt.Errorf("get %s: %w", c, errs.Errorf(errs.NoSpace, "no space left on device: 3 MiB free in /db"))
	for _, want := range []error{
		full,
		errs.E("pin", c, errs.New(errs.Timeout, "nothing arrived in time")),
		errs.E(errs.Timeout, c, errors.New("not found locally, and nothing arrived in time: no peer that has it was found")),
		errs.E(errs.NotFound, c),
		errors.New("disk on fire"),
	} {
		cl := serve(t, &failingAPI{err: want})
		mid := serve(t, &failingAPI{err: want, sent: []byte("some bytes")})
		ctx := context.Background()
		_, lsErr := cl.Ls(ctx, c, node.FetchOptions{})
		_, catErr := cl.Cat(ctx, c, io.Discard, node.FetchOptions{})
		exportErr := cl.Export(ctx, c, io.Discard, node.FetchOptions{})
		getErr := cl.Get(ctx, c, t.TempDir(), node.GetOptions{})
		pinErr := cl.PinAdd(ctx, c, pin.Recursive, "", node.FetchOptions{})
		var buf bytes.Buffer
		_, catMidErr := mid.Cat(ctx, c, &buf, node.FetchOptions{})
		exportMidErr := mid.Export(ctx, c, io.Discard, node.FetchOptions{})
		if buf.String() != "some bytes" {
			t.Errorf("cat sent %q before failing", buf.String())
		}
		for way, got := range map[string]error{"answer": lsErr, "cat answer": catErr, "export answer": exportErr,
			"event": getErr, "pin event": pinErr, "cat trailer": catMidErr, "export trailer": exportMidErr} {
			if got == nil || got.Error() != want.Error() || !IsRemote(got) ||
				errs.KindOf(got) != errs.KindOf(want) || errs.Reason(got) != errs.Reason(want) {
				t.Errorf("%s: %v (kind %v, reason %q), want %v (kind %v, reason %q)", way,
					got, errs.KindOf(got), errs.Reason(got), want, errs.KindOf(want), errs.Reason(want))
			}
		}
	}
}

// TestErrorJSON: the shape of an error answer, and its status.
func TestErrorJSON(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		json   string
	}{
		{errs.New(errs.Invalid, `invalid CID "x"`), 400, `{"Error":"invalid CID \"x\"","Kind":"invalid"}`},
		{errors.New("x"), 500, `{"Error":"x","Kind":"other"}`},
		{fmt.Errorf("put: %w", errs.New(errs.NoSpace, "full")), 507, `{"Error":"put: full","Kind":"no space","Reason":"full"}`},
		{context.Canceled, 499, `{"Error":"context canceled","Kind":"canceled"}`},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, tc.err)
		if got := string(bytes.TrimSpace(rec.Body.Bytes())); rec.Code != tc.status || got != tc.json {
			t.Errorf("%v: %d %s, want %d %s", tc.err, rec.Code, got, tc.status, tc.json)
		}
	}
	var e event
	if err := json.Unmarshal([]byte(`{"Error":"x","Kind":"a kind from a newer daemon"}`), &e); err != nil || errs.KindOf(e.err()) != errs.Other {
		t.Errorf("an unknown kind: %v, %v", e.err(), err)
	}
}

// TestInvalidCIDArg: a bad ?arg= is an Invalid error, answered 400.
func TestInvalidCIDArg(t *testing.T) {
	srv := NewServer(&failingAPI{}, nil)
	for _, cmd := range []string{"cat", "get", "ls", "pin/add", "pin/rm", "export"} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v0/"+cmd+"?arg=nope", nil))
		var e errorJSON
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusBadRequest || e.Kind != "invalid" || !errs.Is(errs.Invalid, e.err()) {
			t.Errorf("%s: %d %s", cmd, rec.Code, rec.Body)
		}
	}
}
