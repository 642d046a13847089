package blockstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/share-p2p/share/errs"
)

// TestNoSpaceKind: a full disk is an error of kind NoSpace that says why,
// and still matches ErrNoSpace.
func TestNoSpaceKind(t *testing.T) {
	s := &Store{dir: "/repo/db", readOnly: true}
	for _, err := range []error{s.checkSpace(1), s.writable()} {
		if !errs.Is(errs.NoSpace, err) || !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "read-only because /repo/db was full") {
			t.Errorf("%v: kind %v, want NoSpace, ErrNoSpace and the reason", err, errs.KindOf(err))
		}
		if got := errs.Reason(err); !strings.HasPrefix(got, "no space left on device: ") {
			t.Errorf("Reason = %q", got)
		}
	}
}
