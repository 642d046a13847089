package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/gateway"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/pin"
	"github.com/share-p2p/share/pubsub"
)

// DefaultFollowPoll is how often a follower asks the DHT for a name's
// newest record, besides listening on the name's pubsub topic: a
// follower that joins late, or misses an announcement, catches up then.
const DefaultFollowPoll = 5 * time.Minute

// FollowOptions control Follow.
type FollowOptions struct {
	// Keep keeps the previous version pinned after an update (by default
	// it is unpinned, if follow pinned it).
	Keep bool
	// Once updates the folder to the newest version and returns.
	Once bool
	// Poll is how often the DHT is asked (default DefaultFollowPoll).
	Poll  time.Duration
	Fetch FetchOptions
	// Updated, if not nil, is told of each version written and of each
	// failed attempt (Err set).
	Updated func(FollowUpdate)
}

// FollowUpdate is one version a follower wrote, as `share follow` prints
// it.
type FollowUpdate struct {
	Name     string
	Dir      string
	Cid      string // the version's root
	Value    string // the record's value
	Sequence uint64
	// Written, Removed and Unchanged count the paths of the folder.
	Written, Removed, Unchanged int
	// Kept are the user's paths left alone, with why.
	Kept []string `json:",omitempty"`
	// Fetched is the number of blocks the node fetched from peers while
	// the update ran (node-wide), FetchedBytes the bytes the update's
	// fetch received.
	Fetched      uint64
	FetchedBytes int64
	Took         time.Duration
	At           time.Time
	Err          string `json:",omitempty"`
}

// FollowStatus is a followed folder as the status page and share follow
// ls show it.
type FollowStatus = gateway.FollowStatus

// followers is a node's registry of followed folders and of the pubsub
// topics they listen on.
type followers struct {
	mu     sync.Mutex
	byDir  map[string]*FollowStatus
	topics map[string]map[chan struct{}]bool // the followers' wake channels, by topic
}

// Following lists the folders the node follows, by folder.
func (n *Node) Following() []FollowStatus {
	f := &n.follow
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FollowStatus, 0, len(f.byDir))
	for _, s := range f.byDir {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b FollowStatus) int { return strings.Compare(a.Dir, b.Dir) })
	return out
}

// Follow keeps dir at the newest version of the IPNS name: it resolves
// the name now (DHT), then on each record announced on the name's pubsub
// topic and every opts.Poll, and writes each new version to dir
// (fetching only the blocks not here), pins it and unpins the one
// before. It returns when ctx ends (nil) or, with opts.Once, after one
// update. Updates of a folder run one at a time; records that arrive
// during one are coalesced into the next.
func (n *Node) Follow(ctx context.Context, name, dir string, opts FollowOptions) error {
	id, err := ipns.ParseName(name)
	if err != nil {
		return errs.E(errs.Op("follow"), errs.Invalid, err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	st, err := n.openFollow(id, dir)
	if err != nil {
		return err
	}
	defer n.follow.remove(dir)
	wake, stop := n.watchName(ctx, id)
	defer stop()
	poll := time.NewTicker(cmpOr(opts.Poll, DefaultFollowPoll))
	defer poll.Stop()
	fromDHT := true
	for {
		err := n.followStep(ctx, id, dir, st, fromDHT, opts)
		if opts.Once || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			fromDHT = false
		case <-poll.C:
			fromDHT = true
		}
	}
}

// openFollow registers dir as followed and loads its state; a folder
// followed already, or one that follows another name, is refused.
func (n *Node) openFollow(id peer.ID, dir string) (*followState, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errs.E(errs.Op("follow"), err)
	}
	st, err := n.loadFollowState(dir)
	if err != nil {
		return nil, err
	}
	name := ipns.Name(id)
	if st.Name != "" && st.Name != name {
		return nil, errs.Errorf(errs.Invalid, "follow: %s follows %s already (follow another name into another folder)", dir, st.Name)
	}
	st.Name = name
	if !n.follow.add(dir, &FollowStatus{Name: name, Dir: dir, Cid: st.Root, Sequence: st.Sequence}) {
		return nil, errs.Errorf(errs.Invalid, "follow: %s is followed already", dir)
	}
	return st, nil
}

func (f *followers) add(dir string, s *FollowStatus) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byDir == nil {
		f.byDir = map[string]*FollowStatus{}
	}
	if f.byDir[dir] != nil {
		return false
	}
	f.byDir[dir] = s
	return true
}

func (f *followers) remove(dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.byDir, dir)
}

// set records an update (or, u.Err set, a failed one) of dir.
func (f *followers) set(u FollowUpdate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.byDir[u.Dir]
	if s == nil {
		return
	}
	if s.Err = u.Err; u.Err == "" {
		s.Cid, s.Sequence, s.Updated = u.Cid, u.Sequence, u.At
	}
}

// followStep updates dir if the name's newest record (from the DHT, or
// from this node's store, where pubsub put it) is newer than the version
// dir is at, or an update was cut short. It reports each version
// written, each failed attempt (the error, with Once) and, with Once,
// the version dir is at when there is no newer one.
func (n *Node) followStep(ctx context.Context, id peer.ID, dir string, st *followState, fromDHT bool, opts FollowOptions) error {
	rec, err := n.localRecord(id)
	if fromDHT {
		rec, err = n.ResolveName(ctx, ipns.Name(id))
	}
	if err == nil && rec.Sequence <= st.Sequence && st.Next == nil && st.Root != "" {
		if opts.Once && opts.Updated != nil {
			opts.Updated(FollowUpdate{Name: st.Name, Dir: dir, Cid: st.Root, Value: st.Value, Sequence: st.Sequence,
				Unchanged: len(st.Files), At: time.Now()})
		}
		return nil // not newer
	}
	var u FollowUpdate
	wrote := false
	if err == nil {
		u, wrote, err = n.followUpdate(ctx, dir, st, rec, opts)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		u = FollowUpdate{Name: ipns.Name(id), Dir: dir, Err: err.Error(), At: time.Now()}
	}
	n.follow.set(u)
	// A republished record (a new sequence, the same version) is no news.
	if opts.Updated != nil && (wrote || opts.Once && err == nil || err != nil && !opts.Once) {
		opts.Updated(u)
	}
	return err
}

// localRecord returns the record of id this node holds.
func (n *Node) localRecord(id peer.ID) (NameRecord, error) {
	b, err := n.values.Get(ipns.RoutingKey(id))
	if err != nil {
		return NameRecord{}, err
	}
	r, err := ipns.Unmarshal(b)
	if err != nil {
		return NameRecord{}, errs.E(errs.Corrupt, err)
	}
	return recordOf(id, r), nil
}

// followUpdate brings dir to the version rec points at: fetch and pin
// it, write the folder, unpin the previous version. A record whose value
// is the version dir is at already (a republished record) only moves
// the sequence on; wrote says whether a version was written.
func (n *Node) followUpdate(ctx context.Context, dir string, st *followState, rec NameRecord, opts FollowOptions) (u FollowUpdate, wrote bool, err error) {
	start, fetched := time.Now(), n.Metrics().BlocksFetched.Value()
	u = FollowUpdate{Name: rec.Name, Dir: dir, Value: rec.Value, Sequence: rec.Sequence}
	p, err := dag.ParsePath(rec.Value)
	if err != nil {
		return u, false, errs.E(errs.Corrupt, fmt.Errorf("the record of %s points at %q: %w", rec.Name, rec.Value, err))
	}
	root, err := n.Resolve(ctx, p, opts.Fetch)
	if err != nil {
		return u, false, err
	}
	u.Cid = root.String()
	if wrote = u.Cid != st.Root || st.Next != nil; wrote {
		outer := opts.Fetch.Progress
		opts.Fetch.Progress = func(p Progress) {
			u.FetchedBytes = p.Bytes
			if outer != nil {
				outer(p)
			}
		}
		if err := n.writeVersion(ctx, dir, st, root, opts, &u); err != nil {
			return u, false, err
		}
	}
	st.Sequence, st.Value = rec.Sequence, rec.Value
	if err := n.saveFollowState(dir, st); err != nil {
		return u, false, err
	}
	u.Fetched = n.Metrics().BlocksFetched.Value() - fetched
	u.Took, u.At = time.Since(start), time.Now()
	return u, wrote, nil
}

// writeVersion pins root (fetching what is missing), writes it to dir
// and unpins the version before, unless opts.Keep or the pin is not
// follow's.
func (n *Node) writeVersion(ctx context.Context, dir string, st *followState, root cid.Cid, opts FollowOptions, u *FollowUpdate) error {
	prev := st.Pinned
	pinned, err := n.pinFollowed(ctx, root, st.Name, opts.Fetch)
	if err != nil {
		return err
	}
	tree, err := listTree(ctx, n.local(), root)
	if err != nil {
		return err
	}
	fs := &folderSync{g: n.local(), dir: dir, st: st, save: func(s *followState) error { return n.saveFollowState(dir, s) }}
	if err := fs.syncFolder(ctx, root.String(), tree); err != nil {
		return err
	}
	u.Written, u.Removed, u.Unchanged, u.Kept = fs.res.Written, fs.res.Removed, fs.res.Unchanged, fs.res.Kept
	st.Pinned = pinned
	if prev != "" && prev != pinned && !opts.Keep {
		if c, err := cid.Decode(prev); err == nil {
			n.unpinFollowed(ctx, c, st.Name)
		}
	}
	return nil
}

// followPinName is the name of the pins follow makes.
func followPinName(name string) string { return "follow " + name }

// pinFollowed pins root recursively, fetching the blocks that are not
// here, and returns it ("" when a pin of the user's holds it already:
// follow leaves that pin alone, and never removes it).
func (n *Node) pinFollowed(ctx context.Context, root cid.Cid, name string, opts FetchOptions) (string, error) {
	if p, err := n.Pins.Get(root); err == nil && p.Mode == pin.Recursive && p.Name != followPinName(name) {
		return "", n.fetcher.Have(ctx, root, opts, func(g share.Getter) error { return pin.Complete(ctx, g, root, pin.Recursive) })
	}
	if err := n.PinAdd(ctx, root, pin.Recursive, followPinName(name), opts); err != nil {
		return "", err
	}
	return root.String(), nil
}

// unpinFollowed removes c's pin if follow made it.
func (n *Node) unpinFollowed(ctx context.Context, c cid.Cid, name string) {
	if p, err := n.Pins.Get(c); err == nil && p.Name == followPinName(name) {
		n.Pins.Remove(ctx, c)
	}
}

// followKey is the key of dir's state in keyspace 'F'.
func followKey(dir string) []byte { return []byte(dir) }

func (n *Node) loadFollowState(dir string) (*followState, error) {
	st := &followState{}
	b, err := n.followKV.Get(followKey(dir))
	if errs.Is(errs.NotFound, err) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, errs.E(errs.Corrupt, fmt.Errorf("follow state of %s: %w", dir, err))
	}
	return st, nil
}

func (n *Node) saveFollowState(dir string, st *followState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return n.followKV.Set(followKey(dir), b)
}

// watchName subscribes to id's pubsub topic, if pubsub runs: each valid
// record newer than the one held is stored (as a DHT GET would) and
// signals the channel returned. stop unsubscribes.
func (n *Node) watchName(ctx context.Context, id peer.ID) (chan struct{}, func()) {
	wake := make(chan struct{}, 1)
	nw, _ := n.network(ctx)
	if nw == nil || nw.PubSub == nil {
		return wake, func() {}
	}
	ps, topic := nw.PubSub, ipns.Topic(id)
	n.follow.join(ps, topic, wake, n.recordValidator(id, ps.Self(), topic))
	t, err := ps.Join(topic)
	var sub *pubsub.Subscription
	if err == nil {
		sub, err = t.Subscribe()
	}
	if err != nil {
		nw.logger.Warn("follow: subscribe", "topic", topic, "err", err)
		n.follow.leave(ps, topic, wake)
		return wake, func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if n.values.Put(ipns.RoutingKey(id), m.Data) == nil {
				n.follow.wake(topic)
			}
		}
	}()
	return wake, func() {
		sub.Cancel()
		<-done
		n.follow.leave(ps, topic, wake)
	}
}

// join adds a follower's wake channel to topic, registering v as the
// topic's validator for the first; leave removes it, and the validator
// with the last.
func (f *followers) join(ps *pubsub.PubSub, topic string, wake chan struct{}, v pubsub.Validator) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.topics == nil {
		f.topics = map[string]map[chan struct{}]bool{}
	}
	if f.topics[topic] == nil {
		f.topics[topic] = map[chan struct{}]bool{}
		ps.RegisterValidator(topic, v)
	}
	f.topics[topic][wake] = true
}

func (f *followers) leave(ps *pubsub.PubSub, topic string, wake chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.topics[topic], wake)
	if len(f.topics[topic]) == 0 {
		delete(f.topics, topic)
		ps.UnregisterValidator(topic)
	}
}

// wake tells the followers of topic that a record may be newer than
// their folders' versions.
func (f *followers) wake(topic string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.topics[topic] {
		select {
		case w <- struct{}{}:
		default: // an update is due already: it reads the newest
		}
	}
}

// recordValidator judges the messages of id's topic: a record that does
// not decode, is not signed by id's key or has expired is rejected (and
// its sender scored down); one no newer than the record held is ignored,
// but wakes the followers: the same record may have come first by
// another way (a DHT PUT from its publisher), which wakes nobody.
func (n *Node) recordValidator(id, self peer.ID, topic string) pubsub.Validator {
	key := ipns.RoutingKey(id)
	return func(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.Result {
		r, err := ipns.Unmarshal(m.Data)
		if err != nil || ipns.Validate(id, r, time.Now()) != nil {
			return pubsub.Reject
		}
		if from == self {
			return pubsub.Accept // this node's own publication
		}
		if b, err := n.values.Get(key); err == nil {
			if old, err := ipns.Unmarshal(b); err == nil && ipns.Compare(r, old) <= 0 {
				n.follow.wake(topic)
				return pubsub.Ignore
			}
		}
		return pubsub.Accept
	}
}

// announceRecord publishes the record of id on its pubsub topic, if
// pubsub runs, for the name's followers (and kubo's IPNS over pubsub).
func announceRecord(ctx context.Context, nw *Network, id peer.ID, rec []byte) {
	if nw == nil || nw.PubSub == nil {
		return
	}
	t, err := nw.PubSub.Join(ipns.Topic(id))
	if err == nil {
		err = t.Publish(ctx, rec)
	}
	if err != nil {
		nw.logger.Debug("announce record", "name", ipns.Name(id), "err", err)
	}
}

// startFollowers follows the names of config Follow while the network
// runs, logging each update.
func (nw *Network) startFollowers(n *Node) {
	for _, f := range n.Repo.Config().Follow {
		log := nw.logger.With("name", f.Name, "dir", f.Dir)
		opts := FollowOptions{Keep: f.Keep, Updated: func(u FollowUpdate) {
			if u.Err != "" {
				log.Warn("follow: update failed", "err", u.Err)
				return
			}
			log.Info("follow: updated", "cid", u.Cid, "sequence", u.Sequence, "written", u.Written, "removed", u.Removed, "kept", len(u.Kept))
		}}
		nw.spawn(func() {
			if err := n.Follow(nw.ctx, f.Name, f.Dir, opts); err != nil {
				log.Warn("follow", "err", err)
			}
		})
	}
}
