package fetch

import (
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/traffic"
)

// Transfer is a fetch in progress, as the status page shows it.
type Transfer struct {
	Cid     cid.Cid
	Started time.Time
	Bytes   int64 // fetched so far
	Total   int64 // the DAG's size, once known (else 0)
	Peers   int   // providers in use
	// Rate is the current speed, bytes per second over the last
	// traffic.Window (not the average since Started): 0 once it stalls.
	Rate int64
	// From says what each provider sent, most bytes first.
	From []exchange.PeerStat
}

// transfer is a Transfer as the list keeps it, with its rate's samples.
type transfer struct {
	t    Transfer
	rate traffic.Rate
}

// transfers tracks the fetches in progress.
type transfers struct {
	now func() time.Time // nil: time.Now (tests set a clock)
	mu  sync.Mutex
	m   map[*transfer]struct{}
}

func (t *transfers) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

func (t *transfers) start(c cid.Cid) *transfer {
	now := t.clock()
	tr := &transfer{t: Transfer{Cid: c, Started: now}}
	tr.rate.Observe(now, 0)
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[*transfer]struct{})
	}
	t.m[tr] = struct{}{}
	t.mu.Unlock()
	return tr
}

// update records a session's progress (every 250 ms while it runs).
func (t *transfers) update(tr *transfer, p exchange.Progress, total int64) {
	now := t.clock()
	t.mu.Lock()
	tr.t.Bytes, tr.t.Total, tr.t.Peers, tr.t.From = p.Bytes, total, p.Peers, p.From
	tr.rate.Observe(now, p.Bytes)
	t.mu.Unlock()
}

func (t *transfers) end(tr *transfer) {
	t.mu.Lock()
	delete(t.m, tr)
	t.mu.Unlock()
}

// list returns the transfers, oldest first, with their rates now.
func (t *transfers) list() []Transfer {
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Transfer, 0, len(t.m))
	for tr := range t.m {
		x := tr.t
		x.Rate = tr.rate.PerSecond(now)
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}
