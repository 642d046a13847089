package fetch

import (
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

// Transfer is a fetch in progress, as the status page shows it.
type Transfer struct {
	Cid     cid.Cid
	Started time.Time
	Bytes   int64 // fetched so far
	Total   int64 // the DAG's size, once known (else 0)
	Peers   int   // providers in use
}

// transfers tracks the fetches in progress.
type transfers struct {
	mu sync.Mutex
	m  map[*Transfer]struct{}
}

func (t *transfers) start(c cid.Cid) *Transfer {
	tr := &Transfer{Cid: c, Started: time.Now()}
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[*Transfer]struct{})
	}
	t.m[tr] = struct{}{}
	t.mu.Unlock()
	return tr
}

func (t *transfers) update(tr *Transfer, bytes, total int64, peers int) {
	t.mu.Lock()
	tr.Bytes, tr.Total, tr.Peers = bytes, total, peers
	t.mu.Unlock()
}

func (t *transfers) end(tr *Transfer) {
	t.mu.Lock()
	delete(t.m, tr)
	t.mu.Unlock()
}

func (t *transfers) list() []Transfer {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Transfer, 0, len(t.m))
	for tr := range t.m {
		out = append(out, *tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}
