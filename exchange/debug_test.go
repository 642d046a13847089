package exchange

import (
	"strings"
	"time"

	"github.com/share-p2p/share/exchange/sched"
)

// dump describes a session's state for failing tests.
func (s *Session) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	peers := make([]*sched.Peer, 0, len(s.peers))
	for _, pc := range s.peers {
		peers = append(peers, pc.sp)
	}
	b.WriteString(s.core.Describe(time.Now(), peers...))
	if s.finished {
		b.WriteString("finished\n")
	}
	return b.String()
}
