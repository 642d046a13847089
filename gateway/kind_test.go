package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
)

func TestStatusOfKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{errs.New(errs.NotFound, "gone"), http.StatusNotFound},
		{errs.New(errs.Invalid, "bad"), http.StatusBadRequest},
		{fmt.Errorf("%w: unknown format", errBadRequest), http.StatusBadRequest},
		// A block that takes too long may exist: 504, as kubo answers.
		{fmt.Errorf("block: %w", context.DeadlineExceeded), http.StatusGatewayTimeout},
		{errs.New(errs.Timeout, "slow"), http.StatusGatewayTimeout},
		{errs.New(errs.Corrupt, "hash mismatch"), http.StatusBadGateway},
		{errs.New(errs.Unsupported, "codec"), http.StatusNotImplemented},
		{errs.New(errs.NoSpace, "full"), http.StatusInsufficientStorage},
		{context.Canceled, 499},
		{errs.New(errs.InUse, "held"), http.StatusInternalServerError},
		{errors.New("what"), http.StatusInternalServerError},
		// The named errors of dag, which carry their kinds.
		{fmt.Errorf("x: %w", dag.ErrNoLink), http.StatusNotFound},
		{&dag.NoLinkError{Path: dag.Path{Segments: []string{"a"}}}, http.StatusNotFound},
		{errs.E(errs.NotFound, errs.Path("x")), http.StatusNotFound},
		{fmt.Errorf("x: %w", dag.ErrHashMismatch), http.StatusBadGateway},
		{fmt.Errorf("x: %w", dag.ErrInvalidNode), http.StatusBadGateway},
		{fmt.Errorf("x: %w", dag.ErrUnsupported), http.StatusNotImplemented},
	} {
		if got := statusOf(tc.err); got != tc.want {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
