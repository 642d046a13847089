package bitswap

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// BenchmarkUnmarshal decodes what a busy peer sends: a wantlist of 256
// entries, and 16 blocks of 16 KiB with their presences.
func BenchmarkUnmarshal(b *testing.B) {
	m := &Message{}
	for i := range 256 {
		m.Wants = append(m.Wants, Entry{Cid: testCid(b, 0x55, fmt.Sprint(i)), Priority: int32(i), Type: WantHave, SendDontHave: true})
	}
	for i := range 16 {
		c := testCid(b, 0x55, fmt.Sprint("block", i))
		m.Blocks = append(m.Blocks, Block{Prefix: c.Prefix(), Data: make([]byte, 16<<10)})
		m.Presences = append(m.Presences, Presence{Cid: c, DontHave: i%2 == 0})
	}
	enc := AppendMessage(nil, m, Protocol120)
	_, n := protowire.ConsumeVarint(enc) // the length prefix
	enc = enc[n:]
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(enc); err != nil {
			b.Fatal(err)
		}
	}
}
