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

// maxBatch bounds the ADD_PROVIDER messages of one stream, so that a
// stream's deadline stays short and a failed one loses little.
const maxBatch = 512

// ProvideStats are the figures of one Provide call.
type ProvideStats struct {
	// Keys is the number of distinct keys; Lookups the region lookups and
	// LookupQueries the requests they sent.
	Keys, Lookups, LookupQueries int
	// Requests is the number of ADD_PROVIDER messages, Streams the
	// streams (batches) that carried them, Failed the messages of streams
	// that failed.
	Requests, Streams, Failed int
}

// Messages is the number of requests of all kinds the call sent.
func (s ProvideStats) Messages() int { return s.LookupQueries + s.Requests }

// Provide announces this node as a provider of every key (multihashes) to
// the K peers closest to it, region by region of the key space: keys are
// sorted by their keyspace point; a lookup collects the regionFactor*K
// peers (K for a single key) around the first key not yet announced; every following key whose
// K closest peers provably lie inside that region (by the triangle
// inequality of the XOR metric) is announced from it with no lookup of its
// own. Each peer of a region gets all its keys of the region on one
// stream (up to maxBatch a stream), ProvideConcurrency streams at a time,
// while the next region's lookup runs. One key is the same call with one
// region. It fails if a key reached no peer.
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
	err = d.sendByRegion(ctx, items, snd.batches, &st)
	snd.stop()
	st.Requests, st.Streams, st.Failed = int(snd.requests.Load()), int(snd.streams.Load()), int(snd.failed.Load())
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

// provideBatch is the ADD_PROVIDERs of items[keys[i]] to one peer, on
// one stream.
type provideBatch struct {
	peer peer.AddrInfo
	keys []int
}

// senders send the batches of a ProvideStats, ProvideConcurrency streams
// at a time, counting messages, streams, failures and the peers that took
// each key.
type senders struct {
	batches                   chan provideBatch
	acks                      []atomic.Int32
	requests, streams, failed atomic.Int64
	wg                        sync.WaitGroup
}

func (d *DHT) startSenders(ctx context.Context, items []provideItem, self peer.AddrInfo) *senders {
	s := &senders{batches: make(chan provideBatch), acks: make([]atomic.Int32, len(items))}
	prov := []Peer{PeerOf(self)}
	for range d.cfg.ProvideConcurrency {
		s.wg.Go(func() {
			// The messages of a batch are rewritten in place for the
			// next: no allocation per key.
			buf := make([]Message, maxBatch)
			msgs := make([]*Message, maxBatch)
			for i := range buf {
				buf[i] = Message{Type: AddProvider, ProviderPeers: prov}
				msgs[i] = &buf[i]
			}
			for b := range s.batches {
				for j, i := range b.keys {
					buf[j].Key = items[i].key
				}
				s.send(ctx, d, b, msgs[:len(b.keys)])
			}
		})
	}
	return s
}

// send sends one batch and counts its outcome.
func (s *senders) send(ctx context.Context, d *DHT, b provideBatch, msgs []*Message) {
	s.requests.Add(int64(len(msgs)))
	s.streams.Add(1)
	if !d.sendBatch(ctx, b.peer, msgs) {
		s.failed.Add(int64(len(msgs)))
		return
	}
	for _, i := range b.keys {
		s.acks[i].Add(1)
	}
}

// stop waits for the streams under way once every batch is handed out.
func (s *senders) stop() {
	close(s.batches)
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

// sendByRegion hands out the ADD_PROVIDERs of the sorted items, region by
// region: one lookup finds the peers around the first item left, and
// every item whose K closest peers all lie in that region goes to them
// without a lookup of its own.
func (d *DHT) sendByRegion(ctx context.Context, items []provideItem, batches chan<- provideBatch, st *ProvideStats) error {
	count := d.cfg.K
	if len(items) > 1 {
		// A wider region lets more keys share a lookup; one key needs
		// only its own K peers.
		count *= regionFactor
	}
	for i := 0; i < len(items); {
		region, ls, err := d.run(ctx, FindNode, items[i].key, items[i].at, count, nil, nil)
		st.Lookups++
		st.LookupQueries += ls.Queries
		if err != nil {
			return fmt.Errorf("provide: lookup: %w", err)
		}
		if len(region) == 0 {
			return fmt.Errorf("provide: %w", ErrNoPeers)
		}
		var perPeer [][]int
		perPeer, i = assignRegion(items, i, region, count, d.cfg.K)
		if err := handOut(ctx, region, perPeer, batches); err != nil {
			return err
		}
	}
	return nil
}

// assignRegion takes the items from items[from] on whose k closest peers
// provably lie in region, the peers closest to items[from] that a lookup
// of count found. It returns for each peer of region the indexes of the
// items it gets, and the index of the first item it did not take (more
// than from).
func assignRegion(items []provideItem, from int, region []peer.AddrInfo, count, k int) ([][]int, int) {
	center := items[from].at
	// Every peer within radius of center is in region (if the lookup
	// found fewer than count peers, it found them all).
	whole := len(region) < count
	radius := center.Xor(KeyOf([]byte(region[len(region)-1].ID)))
	keyed := make([]Key, len(region))
	for j, ai := range region {
		keyed[j] = KeyOf([]byte(ai.ID))
	}
	perPeer := make([][]int, len(region))
	idx := make([]int, len(region))
	n := from
	for ; n < len(items); n++ {
		at := items[n].at
		closest := closestIndexes(at, keyed, k, idx)
		far := at.Xor(keyed[closest[len(closest)-1]])
		if !whole && n > from && radius.Cmp(center.Xor(at).add(far)) < 0 {
			break
		}
		for _, j := range closest {
			perPeer[j] = append(perPeer[j], n)
		}
	}
	return perPeer, n
}

// handOut sends each peer's items to the senders in batches of at most
// maxBatch.
func handOut(ctx context.Context, region []peer.AddrInfo, perPeer [][]int, batches chan<- provideBatch) error {
	for j, keys := range perPeer {
		for len(keys) > 0 {
			n := min(len(keys), maxBatch)
			select {
			case batches <- provideBatch{region[j], keys[:n]}:
			case <-ctx.Done():
				return ctx.Err()
			}
			keys = keys[n:]
		}
	}
	return nil
}

// closestIndexes returns the indexes of the n keys closest to target,
// closest first, in idx (reused: len(keys) long).
func closestIndexes(target Key, keys []Key, n int, idx []int) []int {
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
	return idx[:min(len(idx), n)]
}
