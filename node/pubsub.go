package node

import (
	"context"
	"fmt"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/pubsub"
)

// startPubsub starts gossipsub on the host unless Pubsub.Enabled is off
// or the node is temporary (it would leave before any mesh formed): on
// network ipfs kubo's protocols, on share's networks their own.
func (nw *Network) startPubsub(n *Node, temporary bool) error {
	cfg := n.Repo.Config()
	if !cfg.Pubsub.Enabled || temporary {
		return nil
	}
	h := nw.Host
	ps, err := pubsub.New(h.Streams(), pubsub.Config{
		Key:       n.Repo.Identity.Key,
		Protocols: pubsub.Protocols(cfg.Network),
		Outbound: func(p peer.ID) bool {
			c := h.DirectConn(p)
			return c != nil && c.Direction() == p2p.Outbound
		},
		Logger: nw.logger,
	})
	if err != nil {
		return err
	}
	nw.PubSub = ps
	stat := func(f func(pubsub.Stats) int64) func() int64 { return func() int64 { return f(ps.Stats()) } }
	m := n.Metrics().Pubsub
	m["published"].SetFunc(stat(func(s pubsub.Stats) int64 { return s.Published }))
	m["delivered"].SetFunc(stat(func(s pubsub.Stats) int64 { return s.Delivered }))
	m["duplicate"].SetFunc(stat(func(s pubsub.Stats) int64 { return s.Duplicate }))
	m["invalid"].SetFunc(stat(func(s pubsub.Stats) int64 { return s.Invalid }))
	m["ignored"].SetFunc(stat(func(s pubsub.Stats) int64 { return s.Ignored }))
	m["queue_drop"].SetFunc(stat(func(s pubsub.Stats) int64 { return s.QueueDrops }))
	m["subscription_drop"].SetFunc(stat(func(s pubsub.Stats) int64 { return s.SubscriptionDrops }))
	m["publish_wait"].SetFunc(stat(func(s pubsub.Stats) int64 { return s.PublishWaits }))
	return nil
}

// ErrNoPubsub is returned by the pubsub commands when Pubsub.Enabled is
// off.
var ErrNoPubsub = errs.New(errs.Invalid, "pubsub is off (config Pubsub.Enabled is false)")

// PubSub returns the daemon's gossipsub router: what other parts of the
// node (names, following) publish and subscribe through.
func (d *Daemon) PubSub() (*pubsub.PubSub, error) {
	d.netMu.Lock()
	nw := d.net
	d.netMu.Unlock()
	if nw == nil || nw.PubSub == nil {
		return nil, ErrNoPubsub
	}
	return nw.PubSub, nil
}

// PubsubPublish publishes data on topic.
func (d *Daemon) PubsubPublish(ctx context.Context, topic string, data []byte) error {
	t, err := d.pubsubTopic(topic)
	if err != nil {
		return err
	}
	if err := t.Publish(ctx, data); err != nil {
		return errs.E(errs.Op("pubsub pub"), errs.Invalid, err)
	}
	return nil
}

// PubsubSubscribe subscribes to one topic or several (one subscription
// whose messages say their topic); the caller cancels the subscription.
func (d *Daemon) PubsubSubscribe(topics ...string) (*pubsub.Subscription, error) {
	ps, err := d.PubSub()
	if err != nil {
		return nil, err
	}
	sub, err := ps.SubscribeTopics(topics...)
	if err != nil {
		return nil, errs.E(errs.Op("pubsub sub"), errs.Invalid, fmt.Errorf("topic: %w", err))
	}
	return sub, nil
}

// PubsubTopics lists the topics the daemon subscribes to.
func (d *Daemon) PubsubTopics() ([]string, error) {
	ps, err := d.PubSub()
	if err != nil {
		return nil, err
	}
	return ps.Topics(), nil
}

// PubsubPeers lists the pubsub peers subscribed to topic ("" for every
// pubsub peer).
func (d *Daemon) PubsubPeers(topic string) ([]peer.ID, error) {
	ps, err := d.PubSub()
	if err != nil {
		return nil, err
	}
	return ps.ListPeers(topic), nil
}

func (d *Daemon) pubsubTopic(topic string) (*pubsub.Topic, error) {
	ps, err := d.PubSub()
	if err != nil {
		return nil, err
	}
	t, err := ps.Join(topic)
	if err != nil {
		return nil, errs.E(errs.Op("pubsub"), errs.Invalid, fmt.Errorf("topic: %w", err))
	}
	return t, nil
}
