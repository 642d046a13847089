package bitswap

import (
	"testing"
	"time"

	"github.com/share-p2p/share/p2p/mocknet"
	"github.com/share-p2p/share/traffic"
)

// TestServedTraffic: the server counts, per peer, the blocks it sent and
// their bytes, as Bitswap traffic; presences are not blocks.
func TestServedTraffic(t *testing.T) {
	mem := mocknet.New()
	tb := traffic.NewTable()
	s := newServer(t, mem, Config{Traffic: tb}, nil)
	c := newClient(t, mem, s.h)
	one, two := s.add("one"), s.add("three")
	c.send(s.h.ID(), &Message{Wants: []Entry{
		{Cid: one, Type: WantBlock, SendDontHave: true},
		{Cid: two, Type: WantBlock, SendDontHave: true},
		{Cid: s.add("four"), Type: WantHave, SendDontHave: true},
	}})
	c.waitAnswers(3)
	waitFor(t, func() bool {
		st, _ := tb.Stats(c.h.ID(), time.Now())
		return st.BlocksOut == 2
	}, "the server did not count two blocks sent")
	st, _ := tb.Stats(c.h.ID(), time.Now())
	if st.BytesOut != int64(len("one")+len("three")) || st.Protocols != traffic.Bitswap || st.BlocksIn != 0 {
		t.Errorf("counted %+v, want 2 blocks of 8 bytes out over bitswap", st)
	}
}
