package api

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/node"
)

// recordingAPI records the options of the Add it serves.
type recordingAPI struct {
	node.API
	got node.AddOptions
}

func (r *recordingAPI) Add(ctx context.Context, path string, rd io.Reader, opts node.AddOptions, onEntry func(node.Added)) (cid.Cid, error) {
	if rd != nil {
		io.Copy(io.Discard, rd)
	}
	r.got = opts
	r.got.Progress = nil
	return cid.MustParse(testCID), nil
}

// TestAddOptionsCrossTheSocket: the format settings reach the daemon as
// given, unset ones unset (the daemon applies kubo's rules).
func TestAddOptionsCrossTheSocket(t *testing.T) {
	zero, one, no, yes := 0, 1, false, true
	for _, f := range []dag.FormatOptions{
		{},
		{CIDVersion: &zero},
		{CIDVersion: &one, Hash: "sha2-256", RawLeaves: &no},
		{Hash: "blake3", RawLeaves: &yes},
	} {
		rec := &recordingAPI{}
		cl := serve(t, rec)
		want := node.AddOptions{Chunker: "size-262144", PinName: "p", Format: f}
		if _, err := cl.Add(t.Context(), "-", strings.NewReader("data"), want, nil); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rec.got, want) {
			t.Errorf("daemon got %+v, want %+v", rec.got, want)
		}
	}
}
