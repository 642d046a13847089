package exchange

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/share-p2p/share/dag"
)

// FuzzDecodeMessage feeds arbitrary bytes to the frame reader: it must
// never panic or accept a frame above the limits, and every message it
// accepts must encode back to the same bytes.
func FuzzDecodeMessage(f *testing.F) {
	data := []byte("hello block")
	c := dag.Sum(dag.Raw, data)
	f.Add(appendMessage(nil, msgWantBlock, c))
	f.Add(appendMessage(appendMessage(nil, msgWantHave, c), msgCancel, c))
	f.Add(appendMessage(nil, msgDontHave, c))
	f.Add(appendMessage(nil, msgHave, dag.Sum(dag.DagPB, nil)))
	f.Add(append(appendBlockHeader(nil, c, len(data)), data...))
	f.Add(append(appendBlockHeader(nil, c, 300), make([]byte, 300)...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{0x01, 0x01})
	f.Add(append([]byte{0x81, 0x00}, appendMessage(nil, msgWantBlock, c)[1:]...))
	f.Add([]byte{0x00})
	f.Add([]byte{0x05, 0x10, 0x7f, 0x01, 0x02, 0x03})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := newFrameReader(bytes.NewReader(in))
		var out []byte
		for {
			m, buf, err := fr.next()
			if err != nil {
				putBuf(buf)
				if err == io.EOF {
					if !bytes.Equal(out, in) {
						t.Fatalf("re-encoded %x, read %x", out, in)
					}
				} else if !errors.Is(err, ErrBadMessage) && !errors.Is(err, ErrFrameTooLarge) && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(m.data) > MaxBlockSize || len(m.cid.Bytes()) > MaxCIDSize {
				t.Fatalf("accepted a message beyond the limits")
			}
			if m.typ == msgBlock {
				out = append(appendBlockHeader(out, m.cid, len(m.data)), m.data...)
			} else {
				out = appendMessage(out, m.typ, m.cid)
			}
			putBuf(buf)
		}
	})
}
