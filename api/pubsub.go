package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/pubsub"
)

// MessageJSON is a pubsub message as `share pubsub sub --json` prints it
// (one per line): its author, sequence number (decimal: it exceeds what
// JSON numbers carry exactly), data (base64) and topic.
type MessageJSON struct {
	From  string
	Seqno string
	Data  []byte
	Topic string
}

// maxPublish bounds the body of pubsub/pub: one message.
const maxPublish = 1 << 20

// pubsubRoutes serves the pubsub commands of a daemon.
func (s *Server) pubsubRoutes(d *node.Daemon) {
	s.Handle("pubsub/pub", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxPublish+1))
		if err == nil && len(data) > maxPublish {
			err = errs.Errorf(errs.Invalid, "pubsub pub: data of more than %d bytes", maxPublish)
		}
		if err == nil {
			err = d.PubsubPublish(r.Context(), r.URL.Query().Get("arg"), data)
		}
		answer(w, true, err)
	})
	s.Handle("pubsub/sub", func(w http.ResponseWriter, r *http.Request) {
		sub, err := d.PubsubSubscribe(r.URL.Query()["arg"]...)
		if err != nil {
			WriteError(w, err)
			return
		}
		defer sub.Cancel()
		serveMessages(r.Context(), newStream(w), sub)
	})
	s.Handle("pubsub/ls", func(w http.ResponseWriter, r *http.Request) {
		topics, err := d.PubsubTopics()
		answer(w, topics, err)
	})
	s.Handle("pubsub/peers", func(w http.ResponseWriter, r *http.Request) {
		ids, err := d.PubsubPeers(r.URL.Query().Get("arg"))
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = id.String()
		}
		answer(w, out, err)
	})
}

// serveMessages streams sub's messages until ctx ends, with a Dropped
// event after the messages a burst left when the reader (this stream,
// and the client behind it) was too slow for some.
func serveMessages(ctx context.Context, st *stream, sub *pubsub.Subscription) {
	st.flush() // the client knows the subscription stands
	ready, cancel := context.WithCancel(ctx)
	cancel() // Next on it returns only messages already queued
	var dropped int64
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return // the client went away
		}
		// One flush per burst, not per message: at thousands of
		// messages a second the flushes were what fell behind.
		for ; err == nil; m, err = sub.Next(ready) {
			st.buffer(event{Message: messageJSON(m)})
		}
		if n := sub.Dropped(); n > dropped {
			missed := n - dropped
			dropped = n
			st.buffer(event{Dropped: &missed})
		}
		st.flush()
	}
}

func messageJSON(m *pubsub.Message) *MessageJSON {
	return &MessageJSON{From: m.Author().String(), Seqno: strconv.FormatUint(m.SeqNo(), 10), Data: m.Data, Topic: m.Topic}
}

// PubsubPublish publishes data on topic through the daemon.
func (c *Client) PubsubPublish(ctx context.Context, topic string, data io.Reader) error {
	return c.Call(ctx, "pubsub/pub", url.Values{"arg": {topic}}, data, nil)
}

// PubsubSubscribe subscribes the daemon to topic and calls fn with each
// message until ctx ends (nil) or the daemon goes.
func (c *Client) PubsubSubscribe(ctx context.Context, topic string, fn func(MessageJSON)) error {
	return c.PubsubSubscribeTopics(ctx, []string{topic}, fn, nil)
}

// PubsubSubscribeTopics subscribes the daemon to topics on one stream
// and calls fn with each message (its Topic says which) until ctx ends
// (nil) or the daemon goes; dropped, if not nil, is called with the
// number of messages missed when the daemon's queue for this reader
// overflowed (a reader slower than the burst).
func (c *Client) PubsubSubscribeTopics(ctx context.Context, topics []string, fn func(MessageJSON), dropped func(n int64)) error {
	err := c.events(ctx, "pubsub/sub", url.Values{"arg": topics}, nil, func(e event) {
		switch {
		case e.Message != nil:
			fn(*e.Message)
		case e.Dropped != nil && dropped != nil:
			dropped(*e.Dropped)
		}
	}, nil)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// PubsubTopics lists the daemon's subscriptions.
func (c *Client) PubsubTopics(ctx context.Context) ([]string, error) {
	var out []string
	err := c.Call(ctx, "pubsub/ls", nil, nil, &out)
	return out, err
}

// PubsubPeers lists the daemon's pubsub peers of topic ("" for all).
func (c *Client) PubsubPeers(ctx context.Context, topic string) ([]string, error) {
	var out []string
	err := c.Call(ctx, "pubsub/peers", url.Values{"arg": {topic}}, nil, &out)
	return out, err
}
