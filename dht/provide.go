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
	items, err := provideItems(keys)
	if err != nil {
		return st, err
	}
	st.Keys = len(items)
	self := d.selfInfo()
	if d.cfg.Store != nil {
		for _, it := range items {
			d.cfg.Store.AddProvider(it.key, self)
		}
	}
	snd := d.startSenders(ctx, items, self)
	err = d.sendByRegion(ctx, items, snd.tasks, &st)
	snd.stop()
	st.Requests, st.Failed = int(snd.requests.Load()), int(snd.failed.Load())
	if err != nil {
		return st, err
	}
	return st, snd.lost()
}

// provideItem is a key to provide and where it is in the key space.
type provideItem struct {
	key []byte
	at  Key
}

// provideItems validates keys and sorts them by their place in the key
// space, without duplicates, so that neighbours share lookups.
func provideItems(keys [][]byte) ([]provideItem, error) {
	items := make([]provideItem, 0, len(keys))
	for _, k := range keys {
		if !ValidKey(k) {
			return nil, fmt.Errorf("provide %x: %w: key is not a multihash", k, ErrBadMessage)
		}
		items = append(items, provideItem{k, KeyOf(k)})
	}
	slices.SortFunc(items, func(a, b provideItem) int { return a.at.Cmp(b.at) })
	return slices.CompactFunc(items, func(a, b provideItem) bool { return a.at == b.at }), nil
}

// provideTask is one ADD_PROVIDER of items[key] to peer.
type provideTask struct {
	key  int
	peer peer.AddrInfo
}

// senders send the ADD_PROVIDERs of a ProvideStats, ProvideConcurrency at
// a time, counting requests, failures and the peers that took each key.
type senders struct {
	tasks            chan provideTask
	acks             []atomic.Int32
	requests, failed atomic.Int64
	wg               sync.WaitGroup
}

func (d *DHT) startSenders(ctx context.Context, items []provideItem, self peer.AddrInfo) *senders {
	s := &senders{tasks: make(chan provideTask), acks: make([]atomic.Int32, len(items))}
	for range d.cfg.ProvideConcurrency {
		s.wg.Go(func() {
			for t := range s.tasks {
				msg := &Message{Type: AddProvider, Key: items[t.key].key, ProviderPeers: []Peer{PeerOf(self)}}
				s.requests.Add(1)
				if _, err := d.query(ctx, t.peer, msg); err == nil {
					s.acks[t.key].Add(1)
				} else {
					s.failed.Add(1)
				}
			}
		})
	}
	return s
}

// stop waits for the requests under way once every task is handed out.
func (s *senders) stop() {
	close(s.tasks)
	s.wg.Wait()
}

// lost is the error of keys that reached no peer, or nil.
func (s *senders) lost() error {
	lost := 0
	for i := range s.acks {
		if s.acks[i].Load() == 0 {
			lost++
		}
	}
	if lost > 0 {
		return fmt.Errorf("provide: %d of %d keys reached no peer: %w", lost, len(s.acks), ErrNoPeers)
	}
	return nil
}

// sendByRegion hands out the ADD_PROVIDERs of the sorted items: one lookup
// finds the peers of a region of the key space, and every item whose K
// closest peers all lie in that region goes to them without a lookup of
// its own.
func (d *DHT) sendByRegion(ctx context.Context, items []provideItem, tasks chan<- provideTask, st *ProvideStats) error {
	count := regionFactor * d.cfg.K
	for i := 0; i < len(items); {
		center := items[i].at
		region, err := d.lookup(ctx, FindNode, items[i].key, count, nil)
		st.Lookups++
		if err != nil {
			return fmt.Errorf("provide: lookup: %w", err)
		}
		if len(region) == 0 {
			return fmt.Errorf("provide: %w", ErrNoPeers)
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
				case tasks <- provideTask{i, region[j]}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
	return nil
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
