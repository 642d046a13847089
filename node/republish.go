package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/internal/ticker"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/p2p/peer"
)

// RepublishInterval is how often the daemon republishes each of its names
// (kubo's period): well within a record's default lifetime and within the
// 36 h that DHT peers keep a record.
const RepublishInterval = 4 * time.Hour

// republishCheck is how often the republisher looks for names due.
const republishCheck = time.Minute

// due reports whether p must be republished at now: an interval after it
// was published, or halfway through its lifetime if that is sooner.
func (p published) due(now time.Time, interval time.Duration) bool {
	return !now.Before(p.At.Add(min(interval, p.Lifetime/2)))
}

// republisher republishes a node's names before they expire.
type republisher struct {
	interval time.Duration
	// list returns the names published; publish republishes one.
	list    func() (map[peer.ID]published, error)
	publish func(ctx context.Context, id peer.ID, p published) error
	log     *slog.Logger
}

// run checks every minute, until ctx ends, for names due and republishes
// them.
func (r *republisher) run(ctx context.Context) {
	ticker.Run(ctx, republishCheck, func() { r.check(ctx) })
}

// check republishes the names due. A name whose key was removed is
// forgotten by publish.
func (r *republisher) check(ctx context.Context) {
	names, err := r.list()
	if err != nil {
		r.log.Warn("republish: list names", "err", err)
		return
	}
	for id, p := range names {
		if !p.due(time.Now(), r.interval) {
			continue
		}
		if err := r.publish(ctx, id, p); err != nil {
			r.log.Warn("republish", "name", ipns.Name(id), "err", err)
		}
	}
}

// startRepublisher runs the node's republisher on the network.
func (nw *Network) startRepublisher(n *Node) {
	r := &republisher{interval: RepublishInterval, list: n.publishedNames, publish: n.republish, log: nw.logger}
	nw.spawn(func() { r.run(nw.ctx) })
}

// publishedNames returns what the node published, by PeerID.
func (n *Node) publishedNames() (map[peer.ID]published, error) {
	out := map[peer.ID]published{}
	err := n.names.Iterate(func(k, v []byte) error {
		var p published
		if json.Unmarshal(v, &p) == nil {
			out[peer.ID(k)] = p
		}
		return nil
	})
	return out, err
}

// republish publishes p again with a new sequence and a fresh lifetime;
// a name whose key is gone is forgotten.
func (n *Node) republish(ctx context.Context, id peer.ID, p published) error {
	v, err := dag.ParsePath(p.Value)
	if err != nil {
		return n.names.Delete([]byte(id))
	}
	_, err = n.Publish(ctx, v, PublishOptions{Key: p.Key, Lifetime: p.Lifetime, TTL: p.TTL})
	if errs.Is(errs.NotFound, err) {
		return n.names.Delete([]byte(id))
	}
	return err
}
