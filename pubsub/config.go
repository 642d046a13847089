package pubsub

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// The protocol IDs of pubsub on network ipfs, best first, as kubo's
// go-libp2p-pubsub offers them (it also offers /meshsub/1.2.0, whose
// IDONTWANT this node does not send, so it never claims 1.2.0).
const (
	ProtocolMeshsub11 = "/meshsub/1.1.0"
	ProtocolMeshsub10 = "/meshsub/1.0.0"
	ProtocolFloodsub  = "/floodsub/1.0.0"
)

// Protocols returns the protocols pubsub speaks on a network, best first:
// kubo's three on network ipfs, and /NETWORK/meshsub/1.1.0 on share's own
// networks, so that their messages never mix with another network's.
func Protocols(network string) []string {
	if network == "ipfs" {
		return []string{ProtocolMeshsub11, ProtocolMeshsub10, ProtocolFloodsub}
	}
	return []string{"/" + network + "/meshsub/1.1.0"}
}

// Params are gossipsub's router parameters (gossipsub-v1.0.md and
// v1.1.md); the zero value of a field means its default, go-libp2p-pubsub's.
type Params struct {
	D, Dlo, Dhi, Dscore, Dout int // mesh degree: 6, 5, 12, 4, 2
	Dlazy                     int // gossip to at least 6 peers
	GossipFactor              float64
	HistoryLength             int // heartbeats of messages kept for IWANT: 5
	HistoryGossip             int // heartbeats of messages announced in IHAVE: 3
	Heartbeat                 time.Duration
	FanoutTTL                 time.Duration
	PruneBackoff              time.Duration // 1 min
	UnsubscribeBackoff        time.Duration // 10 s
	PrunePeers                int           // peers offered by peer exchange: 16
	GraftFloodThreshold       time.Duration // a GRAFT this soon after a PRUNE is a flood: 10 s
	GossipRetransmission      int           // IWANTs served per message and peer: 3
	MaxIHaveLength            int           // IDs asked of one peer per heartbeat: 5000
	MaxIHaveMessages          int           // IHAVEs heeded per peer per heartbeat: 10
	IWantFollowup             time.Duration // an IHAVE's promise lasts 3 s
	OpportunisticGraftTicks   int           // 60
	OpportunisticGraftPeers   int           // 2
}

func (p Params) withDefaults() Params {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.D, 6)
	def(&p.Dlo, 5)
	def(&p.Dhi, 12)
	def(&p.Dscore, 4)
	def(&p.Dout, 2)
	def(&p.Dlazy, 6)
	def(&p.HistoryLength, 5)
	def(&p.HistoryGossip, 3)
	def(&p.PrunePeers, 16)
	def(&p.GossipRetransmission, 3)
	def(&p.MaxIHaveLength, 5000)
	def(&p.MaxIHaveMessages, 10)
	def(&p.OpportunisticGraftTicks, 60)
	def(&p.OpportunisticGraftPeers, 2)
	defDur(&p.Heartbeat, time.Second)
	defDur(&p.FanoutTTL, time.Minute)
	defDur(&p.PruneBackoff, time.Minute)
	defDur(&p.UnsubscribeBackoff, 10*time.Second)
	defDur(&p.GraftFloodThreshold, 10*time.Second)
	defDur(&p.IWantFollowup, 3*time.Second)
	if p.GossipFactor == 0 {
		p.GossipFactor = 0.25
	}
	return p
}

func (p Params) validate() error {
	switch {
	case p.Dlo > p.D || p.D > p.Dhi:
		return fmt.Errorf("pubsub: mesh degrees must be Dlo <= D <= Dhi, not %d, %d, %d", p.Dlo, p.D, p.Dhi)
	case p.Dout >= p.Dlo || p.Dout > p.D/2:
		return fmt.Errorf("pubsub: Dout %d must be below Dlo and at most D/2", p.Dout)
	case p.Dscore > p.D:
		return fmt.Errorf("pubsub: Dscore %d exceeds D %d", p.Dscore, p.D)
	case p.HistoryGossip > p.HistoryLength:
		return errors.New("pubsub: HistoryGossip exceeds HistoryLength")
	}
	return nil
}

// Config configures a PubSub. Key is required; every other zero field
// means its default.
type Config struct {
	// Key signs the messages this node publishes; its peer ID is the
	// host's.
	Key ed25519.PrivateKey
	// Protocols are offered and dialled, best first (default
	// Protocols("share")).
	Protocols []string
	Params    Params
	// Score weighs peers' behaviour (default DefaultScore).
	Score *ScoreParams
	// MaxMessageSize bounds an RPC frame, each way, and so a message
	// (default 1 MiB, kubo's).
	MaxMessageSize int
	// SeenTTL is how long a message ID is remembered so that it is not
	// delivered twice (default 2 min, kubo's), and MaxSeen how many
	// (default 256 Ki; the oldest are forgotten first).
	SeenTTL time.Duration
	MaxSeen int
	// QueueSize and QueueBytes bound the RPCs waiting to be written to
	// one peer (default 1024 and 4 MiB; one RPC alone always fits): a slow
	// peer misses forwarded messages, it does not grow memory, and this
	// node's own Publish waits for room rather than drop.
	QueueSize  int
	QueueBytes int
	// SubscriptionBuffer and SubscriptionBytes bound the messages waiting
	// in a Subscription (default 4096 and 4 MiB of data); a reader slower
	// than that misses messages, which Subscription.Dropped counts.
	SubscriptionBuffer int
	SubscriptionBytes  int
	// ValidateTimeout bounds a user validator (default 5 s).
	ValidateTimeout time.Duration
	// MaxTopicsPerPeer bounds the subscriptions remembered of one peer
	// (default 5000).
	MaxTopicsPerPeer int
	// NoFloodPublish sends this node's own messages to its mesh only;
	// by default they go to every peer of the topic, as kubo does.
	NoFloodPublish bool
	// Outbound reports whether this node dialled its connection to p, for
	// the mesh's outbound quota; nil counts no peer as outbound.
	Outbound func(p peer.ID) bool
	Logger   *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Key) != ed25519.PrivateKeySize {
		return c, errors.New("pubsub: Config.Key must be an ed25519 private key")
	}
	if len(c.Protocols) == 0 {
		c.Protocols = Protocols("share")
	}
	c.Params = c.Params.withDefaults()
	if err := c.Params.validate(); err != nil {
		return c, err
	}
	if c.Score == nil {
		s := DefaultScore()
		c.Score = &s
	}
	pos := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	pos(&c.MaxMessageSize, 1<<20)
	pos(&c.MaxSeen, 256<<10)
	pos(&c.QueueSize, 1024)
	pos(&c.QueueBytes, 4<<20)
	pos(&c.SubscriptionBuffer, 4096)
	pos(&c.SubscriptionBytes, 4<<20)
	pos(&c.MaxTopicsPerPeer, DefaultMaxTopicsPerPeer)
	if c.SeenTTL <= 0 {
		c.SeenTTL = 2 * time.Minute
	}
	if c.ValidateTimeout <= 0 {
		c.ValidateTimeout = 5 * time.Second
	}
	if c.Outbound == nil {
		c.Outbound = func(peer.ID) bool { return false }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// DefaultMaxTopicsPerPeer is Config.MaxTopicsPerPeer's default.
const DefaultMaxTopicsPerPeer = 5000
