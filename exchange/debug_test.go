package exchange

import (
	"fmt"
	"strings"
	"time"
)

// dump describes a session's state for failing tests.
func (s *Session) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "unfinished %d pending %d outstanding %d inflight %d verifying %d retained %d finished %v\n",
		s.unfinished, s.pending.Len(), len(s.outstanding), s.inflight, s.verifying, s.retained, s.finished)
	for id, pc := range s.peers {
		fmt.Fprintf(&b, "peer %s reqs %d window %d rate %.0f minRTT %v dead %v cancelled %d\n", id, len(pc.reqs), pc.window, pc.rate, pc.minRTT, pc.dead, len(pc.cancelled))
	}
	states := map[entryState]int{}
	for _, en := range s.entries {
		states[en.state]++
	}
	fmt.Fprintf(&b, "states %v refetches %d\n", states, s.refetches)
	for en := range s.outstanding {
		fmt.Fprintf(&b, "outstanding %s key %v prio %v dupOK %v at %d dontHave %d sent %v ago\n", en.c, en.key, en.prio, en.dupOK, len(en.at), len(en.dontHave), time.Since(en.sentAt))
		for _, pc := range en.at {
			_, c := pc.cancelled[en.c]
			fmt.Fprintf(&b, "  at %s since %v cancelled %v\n", pc.id, time.Since(pc.reqs[en.c].sent), c)
		}
	}
	return b.String()
}
