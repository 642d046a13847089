package dht

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/share-p2p/share/p2p/peer"
)

// regionFactor is how many times K peers a provide lookup collects around
// its target: the more, the more keys near the target share the lookup.
const regionFactor = 3

// ProvideStats are the figures of one Provide call.
type ProvideStats struct {
	Keys, Lookups, Requests, Failed int
}

// Provide announces this node as a provider of every key (multihashes) to
// the K peers closest to it. Keys close to each other share lookups: keys
// are sorted by their keyspace point; a lookup collects the regionFactor*K
// peers around the first key not yet announced; every following key whose
// K closest peers provably lie inside that region (by the triangle
// inequality of the XOR metric) is announced from it with no lookup of its
// own. It fails if a key reached no peer.
func (d *DHT) Provide(ctx context.Context, keys [][]byte) error {
	_, err := d.ProvideStats(ctx, keys)
	return err
}

// ProvideStats is Provide returning its figures.
func (d *DHT) ProvideStats(ctx context.Context, keys [][]byte) (ProvideStats, error) {
	var st ProvideStats
	if d.mode == ModeOff {
		return st, ErrOff
	}
	type item struct {
		key []byte
		at  Key
	}
	items := make([]item, 0, len(keys))
	for _, k := range keys {
		if !ValidKey(k) {
			return st, fmt.Errorf("provide %x: %w: key is not a multihash", k, ErrBadMessage)
		}
		items = append(items, item{k, KeyOf(k)})
	}
	slices.SortFunc(items, func(a, b item) int { return a.at.Cmp(b.at) })
	items = slices.CompactFunc(items, func(a, b item) bool { return a.at == b.at })
	st.Keys = len(items)

	self := d.selfInfo()
	if d.cfg.Store != nil {
		for _, it := range items {
			d.cfg.Store.AddProvider(it.key, self)
		}
	}

	type task struct {
		key  int
		peer peer.AddrInfo
	}
	acks := make([]atomic.Int32, len(items))
	tasks := make(chan task)
	var wg sync.WaitGroup
	var requests, failed atomic.Int64
	for range d.cfg.ProvideConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				msg := &Message{Type: AddProvider, Key: items[t.key].key, ProviderPeers: []Peer{PeerOf(self)}}
				requests.Add(1)
				if _, err := d.query(ctx, t.peer, msg); err == nil {
					acks[t.key].Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	var err error
	count := regionFactor * d.cfg.K
	for i := 0; i < len(items) && err == nil; {
		center := items[i].at
		region, lerr := d.lookup(ctx, FindNode, items[i].key, count, nil)
		st.Lookups++
		if lerr != nil || len(region) == 0 {
			err = fmt.Errorf("provide: lookup: %w", lerr)
			if lerr == nil {
				err = fmt.Errorf("provide: %w", ErrNoPeers)
			}
			break
		}
		// Every peer within radius of center is in region (if the lookup
		// found fewer than count peers, it found them all).
		whole := len(region) < count
		radius := center.Xor(KeyOf([]byte(region[len(region)-1].ID)))
		keyed := make([]Key, len(region))
		for j, ai := range region {
			keyed[j] = KeyOf([]byte(ai.ID))
		}
		for ; i < len(items); i++ {
			at := items[i].at
			idx := closestIndexes(at, keyed, d.cfg.K)
			far := at.Xor(keyed[idx[len(idx)-1]])
			if !whole && at != center && radius.Cmp(center.Xor(at).add(far)) < 0 {
				break
			}
			for _, j := range idx {
				select {
				case tasks <- task{i, region[j]}:
				case <-ctx.Done():
					err = ctx.Err()
				}
				if err != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
	}
	close(tasks)
	wg.Wait()
	st.Requests, st.Failed = int(requests.Load()), int(failed.Load())
	if err != nil {
		return st, err
	}
	lost := 0
	for i := range acks {
		if acks[i].Load() == 0 {
			lost++
		}
	}
	if lost > 0 {
		return st, fmt.Errorf("provide: %d of %d keys reached no peer: %w", lost, len(items), ErrNoPeers)
	}
	return st, nil
}

// closestIndexes returns the indexes of the n keys closest to target,
// closest first.
func closestIndexes(target Key, keys []Key, n int) []int {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if closer(target, keys[a], keys[b]) {
			return -1
		}
		if closer(target, keys[b], keys[a]) {
			return 1
		}
		return 0
	})
	if len(idx) > n {
		idx = idx[:n]
	}
	return idx
}
