package errs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func testCID(t *testing.T) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum([]byte("x"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh)
}

func TestErrorText(t *testing.T) {
	c := testCID(t)
	leaf := New(Corrupt, "hash mismatch")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{leaf, "hash mismatch"},
		{Errorf(NotFound, "key %q", "k"), `key "k"`},
		{E(NotFound, c), c.String() + ": not found"},
		{E("get", c, E(NotFound, c)), "get " + c.String() + ": not found"},
		{E(c, fmt.Errorf("block %s: %w", c, leaf)), "block " + c.String() + ": hash mismatch"},
		{E("pin add", NotFound, c, New(NotFound, "not pinned")), "pin add " + c.String() + ": not pinned"},
		{E("get", Timeout, errors.New("nothing arrived")), "get: timeout: nothing arrived"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	leaf := New(Corrupt, "hash mismatch")
	wrapped := fmt.Errorf("block x: %w", leaf)
	if !Is(Corrupt, wrapped) || !errors.Is(wrapped, leaf) {
		t.Errorf("a wrapped New error: kind %v, errors.Is %v", KindOf(wrapped), errors.Is(wrapped, leaf))
	}
	if k := KindOf(E("get", wrapped)); k != Corrupt {
		t.Errorf("E without a kind: %v, want the kind underneath", k)
	}
	if Is(NotFound, nil) {
		t.Error("nil is of a kind")
	}
}
