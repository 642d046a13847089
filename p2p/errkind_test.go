package p2p

import (
	"fmt"
	"testing"

	"github.com/share-p2p/share/errs"
)

func TestOtherNetworkKind(t *testing.T) {
	err := fmt.Errorf("connect x: %w", fmt.Errorf("%w: it does not speak /x", ErrOtherNetwork))
	if !errs.Is(errs.OtherNetwork, err) || err.Error() != "connect x: peer is on another network: it does not speak /x" {
		t.Errorf("%v: kind %v", err, errs.KindOf(err))
	}
}
