package metrics

import "strings"

// Node holds the metrics a share node exports. NewNode registers them in a
// fresh registry; the node serves Registry (the gateway does, at /metrics)
// and updates the fields where the events happen.
type Node struct {
	Registry *Registry

	// Bytes counts stream payload bytes by direction ("in" or "out") and
	// protocol ("blocks", "kad", "id", "ping"). Take the counter once per
	// stream with BytesIn or BytesOut and Add to it as bytes move.
	Bytes *CounterVec
	// BlocksServed counts blocks sent to peers by the exchange server.
	BlocksServed *Counter
	// BlocksFetched counts blocks received from peers and verified.
	BlocksFetched *Counter
	// Peers is the number of connected peers.
	Peers *Gauge
	// DHTRequests counts DHT requests sent, by message type ("FIND_NODE",
	// "GET_PROVIDERS", "ADD_PROVIDER", "PING").
	DHTRequests *CounterVec
	// AutoNAT counts AutoNAT v2 outcomes by role ("client": checks of
	// this node's addresses, "reachable", "unreachable", "refused"...;
	// "server": requests served, "ok", "dial_error", "rejected"...).
	AutoNAT *CounterVec
	// HolePunch counts hole punches (DCUtR) by role ("initiator": this
	// node accepted the relayed connection; "receiver") and outcome
	// ("success", "failed", "no_addrs", "protocol_error", "direct").
	HolePunch *CounterVec
	// HolePunchMillis is the time of the last successful punch, from the
	// relayed connection's opening to the direct connection.
	HolePunchMillis *Gauge
	// StoreBytes and StoreBlocks describe the blockstore: Set them after
	// adds and gc, or SetFunc them to something cheap.
	StoreBytes  *Gauge
	StoreBlocks *Gauge
	// GCRuns counts completed garbage collections; GCFreedBytes and
	// GCFreedBlocks what they removed.
	GCRuns        *Counter
	GCFreedBytes  *Counter
	GCFreedBlocks *Counter
	// Pubsub counts gossipsub messages by what happened to them
	// (published, delivered, duplicate, invalid, ignored, queue_drop,
	// subscription_drop, publish_wait: own messages that waited for room
	// in a peer's queue): SetFunc them to the router's counters.
	Pubsub map[string]*Gauge
}

// NewNode returns the node metrics, registered in a new Registry.
func NewNode() *Node {
	r := NewRegistry()
	n := &Node{
		Pubsub:          map[string]*Gauge{},
		Registry:        r,
		Bytes:           r.NewCounterVec("share_bytes_total", "Stream payload bytes by direction and protocol.", "direction", "protocol"),
		BlocksServed:    r.NewCounter("share_blocks_served_total", "Blocks sent to peers."),
		BlocksFetched:   r.NewCounter("share_blocks_fetched_total", "Blocks received from peers and verified."),
		Peers:           r.NewGauge("share_peers_connected", "Connected peers."),
		DHTRequests:     r.NewCounterVec("share_dht_requests_total", "DHT requests sent, by message type.", "type"),
		AutoNAT:         r.NewCounterVec("share_autonat_total", "AutoNAT v2 outcomes, by role (client or server) and outcome.", "role", "outcome"),
		HolePunch:       r.NewCounterVec("share_holepunch_total", "Hole punches (DCUtR) by role (initiator or receiver) and outcome.", "role", "outcome"),
		HolePunchMillis: r.NewGauge("share_holepunch_last_ms", "Milliseconds from the relayed connection to the direct one, last successful hole punch."),
		StoreBytes:      r.NewGauge("share_store_bytes", "Bytes of blocks in the blockstore."),
		StoreBlocks:     r.NewGauge("share_store_blocks", "Blocks in the blockstore."),
		GCRuns:          r.NewCounter("share_gc_runs_total", "Completed garbage collections."),
		GCFreedBytes:    r.NewCounter("share_gc_freed_bytes_total", "Bytes of blocks removed by garbage collection."),
		GCFreedBlocks:   r.NewCounter("share_gc_freed_blocks_total", "Blocks removed by garbage collection."),
	}
	for _, e := range PubsubEvents {
		n.Pubsub[e] = r.NewGauge("share_pubsub_"+e+"_messages", "Gossipsub messages since the daemon started: "+strings.ReplaceAll(e, "_", " ")+".")
	}
	return n
}

// PubsubEvents are the keys of Node.Pubsub.
var PubsubEvents = []string{"published", "delivered", "duplicate", "invalid", "ignored", "queue_drop", "subscription_drop", "publish_wait"}

// BytesIn returns the counter of bytes received on protocol.
func (n *Node) BytesIn(protocol string) *Counter { return n.Bytes.With("in", protocol) }

// BytesOut returns the counter of bytes sent on protocol.
func (n *Node) BytesOut(protocol string) *Counter { return n.Bytes.With("out", protocol) }
