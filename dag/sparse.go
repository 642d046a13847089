package dag

import (
	"bytes"

	"github.com/share-p2p/share/internal/drop"
)

// holeWriter writes a file through a drop.Writer, seeking over the
// segments that are all zeros instead of writing them, so that a sparse
// file comes back sparse: the importer cuts files at chunk boundaries, so
// the zero chunks of a sparse file arrive as whole segments (one leaf
// each). Finish sets the file's size when it ends in a hole.
type holeWriter struct {
	w    *drop.Writer
	tail bool // the last segment was skipped
}

func (h *holeWriter) Write(p []byte) (int, error) {
	if isZero(p) {
		if err := h.w.Skip(int64(len(p))); err != nil {
			return 0, err
		}
		h.tail = true
		return len(p), nil
	}
	h.tail = false
	return h.w.Write(p)
}

// finish truncates the file to what was written, if it ends in a hole.
func (h *holeWriter) finish() error {
	if !h.tail {
		return nil
	}
	return h.w.File().Truncate(h.w.Offset())
}

// zeros is compared against; it is never written to.
var zeros [64 << 10]byte

// isZero reports whether p holds only zero bytes. Data that is not zero
// differs within its first bytes, so the check costs almost nothing
// there; a zero chunk is compared at memory speed (bytes.Equal is
// vectorised).
func isZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zeros))
		if !bytes.Equal(p[:n], zeros[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}
