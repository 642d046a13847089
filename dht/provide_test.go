package dht

import (
	"context"
	"crypto/rand"
	"slices"
	"sync"
	"testing"

	"github.com/share-p2p/share/p2p/peer"
)

// closestOf returns the n peers of all closest to target, closest first.
func closestOf(target Key, all []peer.AddrInfo, n int) []peer.ID {
	keys := make([]Key, len(all))
	for i, ai := range all {
		keys[i] = KeyOf([]byte(ai.ID))
	}
	var out []peer.ID
	for _, i := range closestIndexes(target, keys, n, make([]int, len(keys))) {
		out = append(out, all[i].ID)
	}
	return out
}

func sortedItems(t *testing.T, n int) []provideItem {
	t.Helper()
	keys := make([][]byte, n)
	for i := range keys {
		k := make([]byte, 34)
		k[0], k[1] = 0x12, 0x20
		rand.Read(k[2:])
		keys[i] = k
	}
	items, err := provideItems(keys)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// TestAssignRegion: in a network of 600 peers, a region is the 60 peers
// closest to the first key left (what a lookup finds). Every key the
// region takes goes to exactly its K closest peers of the whole network,
// each key once; the first key is always taken; the regions, one after
// the other, take every key; and with the whole network in the region
// (a lookup that found fewer peers than it asked for) every key is taken
// at once.
func TestAssignRegion(t *testing.T) {
	const k, count = 20, 60
	all := make([]peer.AddrInfo, 600)
	byID := map[peer.ID]peer.AddrInfo{}
	for i := range all {
		all[i] = randomInfo(t, i)
		byID[all[i].ID] = all[i]
	}
	items := sortedItems(t, 3000)
	regions := 0
	for from := 0; from < len(items); regions++ {
		ids := closestOf(items[from].at, all, count)
		region := make([]peer.AddrInfo, len(ids))
		for i, id := range ids {
			region[i] = byID[id]
		}
		perPeer, next := assignRegion(items, from, region, count, k)
		if next <= from {
			t.Fatalf("region at %d took nothing", from)
		}
		got := map[int][]peer.ID{}
		for j, idx := range perPeer {
			for _, i := range idx {
				if i < from || i >= next {
					t.Fatalf("region [%d, %d) assigns item %d", from, next, i)
				}
				got[i] = append(got[i], region[j].ID)
			}
		}
		for i := from; i < next; i++ {
			want := closestOf(items[i].at, all, k)
			slices.Sort(want)
			slices.Sort(got[i])
			if !slices.Equal(got[i], want) {
				t.Fatalf("item %d goes to %d peers, not its %d closest", i, len(got[i]), k)
			}
		}
		from = next
	}
	// A region is about 3K/len(all) of the key space less its margin:
	// some 10 to 20 regions whatever the number of keys.
	t.Logf("%d keys, %d peers: %d regions", len(items), len(all), regions)
	if regions > len(all)/15 {
		t.Errorf("%d regions for %d keys in %d peers: the regions share too little", regions, len(items), len(all))
	}

	small := all[:50] // fewer than count: the lookup found them all
	perPeer, next := assignRegion(items, 0, small, count, k)
	if next != len(items) {
		t.Fatalf("a region of the whole network took %d of %d keys", next, len(items))
	}
	n := 0
	for _, idx := range perPeer {
		n += len(idx)
	}
	if n != k*len(items) {
		t.Fatalf("%d assignments, want %d", n, k*len(items))
	}
}

// recordingNet is a Network and Batcher that records what reaches each
// peer and acknowledges everything.
type recordingNet struct {
	mu      sync.Mutex        // the lookup's queries run in parallel
	singles int               // requests sent alone
	batches map[peer.ID][]int // messages per stream, by peer
}

func (n *recordingNet) Send(_ context.Context, to peer.AddrInfo, req *Message) (*Message, error) {
	n.mu.Lock()
	n.singles++
	n.mu.Unlock()
	return &Message{Type: req.Type, Key: req.Key}, nil
}

func (n *recordingNet) Serve(Handler) {}

func (n *recordingNet) SendBatch(_ context.Context, to peer.AddrInfo, msgs []*Message) error {
	n.mu.Lock()
	n.batches[to.ID] = append(n.batches[to.ID], len(msgs))
	n.mu.Unlock()
	return nil
}

// TestProvideBatches: with the whole network (30 peers) in the routing
// table, one region takes every key and each peer gets its keys on
// streams of maxBatch messages, but the last; the figures count them.
func TestProvideBatches(t *testing.T) {
	net := &recordingNet{batches: map[peer.ID][]int{}}
	self := randomInfo(t, 0)
	// One sender at a time: the recordingNet is not safe for more.
	d, err := New(Config{Self: func() peer.AddrInfo { return self }, Mode: ModeClient, Transport: net, RefreshInterval: -1, ProvideConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := range 30 {
		d.AddPeer(randomInfo(t, i+1))
	}
	keys := make([][]byte, 3000)
	for i, it := range sortedItems(t, len(keys)) {
		keys[i] = it.key
	}
	st, err := d.ProvideStats(t.Context(), keys)
	if err != nil {
		t.Fatal(err)
	}
	msgs, streams := 0, 0
	for id, ss := range net.batches {
		if id == self.ID {
			t.Fatal("provided to itself")
		}
		for i, n := range ss {
			if n > maxBatch || n < maxBatch && i < len(ss)-1 {
				t.Errorf("peer %s: streams of %v messages", id, ss)
			}
			msgs += n
		}
		streams += len(ss)
	}
	if st.Keys != 3000 || st.Lookups != 1 || st.LookupQueries != net.singles || st.Requests != 20*3000 ||
		msgs != st.Requests || streams != st.Streams || st.Failed != 0 {
		t.Fatalf("figures %+v; the network saw %d requests alone, %d ADD_PROVIDERs on %d streams", st, net.singles, msgs, streams)
	}
}
