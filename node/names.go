package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/repo"
)

// Defaults of publishing, kubo 0.43's.
const (
	DefaultLifetime = 48 * time.Hour
	DefaultTTL      = 5 * time.Minute
)

// maxNameDepth bounds the names a name's record may lead through
// (/ipns/A pointing at /ipns/B...), as kubo bounds them.
const maxNameDepth = 8

// PublishOptions control Publish.
type PublishOptions struct {
	// Key is the name of the key to sign with ("" or "self": the node's
	// own, whose name is the node's PeerID).
	Key string
	// Lifetime is how long the record is valid (default 48 h); the daemon
	// republishes it before it ends.
	Lifetime time.Duration
	// TTL is how long resolvers may cache it (default 5 min).
	TTL time.Duration
}

// NameRecord is a record as publish and resolve show it.
type NameRecord struct {
	Name     string // k51...
	Value    string // /ipfs/CID[/PATH] (or /ipns/NAME...)
	Sequence uint64
	Validity time.Time
	TTL      time.Duration
	// Key is the key that signed it (publish only).
	Key string `json:",omitempty"`
	// Peers is the number of DHT peers that took it (publish only).
	Peers int `json:",omitempty"`
}

func recordOf(id peer.ID, r *ipns.Record) NameRecord {
	return NameRecord{Name: ipns.Name(id), Value: string(r.Value), Sequence: r.Sequence, Validity: r.Validity, TTL: r.TTL}
}

// published is what the node keeps of a name it publishes, so that the
// daemon republishes it (keyspace 'N', by PeerID).
type published struct {
	Key      string
	Value    string
	Lifetime time.Duration
	TTL      time.Duration
	Sequence uint64
	At       time.Time // when it was last published
}

// Publish signs a record pointing the name of opts.Key at value, stores it
// here and puts it in the DHTs (WAN and LAN), and remembers it for the
// daemon to republish. The sequence number is one more than the last this
// node (or, when it has none, the DHT) knows of. Without a reachable DHT
// the record is kept here, and the error says so.
func (n *Node) Publish(ctx context.Context, value dag.Path, opts PublishOptions) (NameRecord, error) {
	opts.Lifetime = cmpOr(opts.Lifetime, DefaultLifetime)
	opts.TTL = cmpOr(opts.TTL, DefaultTTL)
	if opts.Key == "" {
		opts.Key = repo.SelfKey
	}
	priv, err := repo.KeysOf(n.Repo.Path).Private(opts.Key)
	if err != nil {
		return NameRecord{}, err
	}
	id, _ := peer.IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	val := value.String()
	if value.Name == "" {
		val = "/ipfs/" + val
	}
	nw, nerr := n.network(ctx)
	seq := n.nextSequence(ctx, nw, id)
	r, err := ipns.New(priv, []byte(val), seq, time.Now().Add(opts.Lifetime), opts.TTL)
	if err != nil {
		return NameRecord{}, errs.E(errs.Invalid, err)
	}
	key, b := ipns.RoutingKey(id), r.Marshal()
	if err := n.values.Put(key, b); err != nil {
		return NameRecord{}, fmt.Errorf("publish %s: %w", ipns.Name(id), err)
	}
	p := published{Key: opts.Key, Value: val, Lifetime: opts.Lifetime, TTL: opts.TTL, Sequence: seq, At: time.Now()}
	if err := n.savePublished(id, p); err != nil {
		return NameRecord{}, err
	}
	// Followers hear of the record within a second on the name's topic,
	// before the DHT has it.
	announceRecord(ctx, nw, id, b)
	out := recordOf(id, r)
	out.Key = opts.Key
	if nerr != nil {
		return out, errs.E(errs.Unreachable, fmt.Errorf("published %s here only: %w", out.Name, nerr))
	}
	if nw == nil || nw.Routing == nil {
		return out, errs.Errorf(errs.Unreachable, "published %s here only: the DHT is off", out.Name)
	}
	waitRouting(ctx, nw)
	out.Peers, err = nw.Routing.PutValue(ctx, key, b)
	if err != nil {
		return out, errs.E(errs.Unreachable, fmt.Errorf("published %s here, but no DHT peer took the record (the daemon retries when it republishes): %w", out.Name, err))
	}
	return out, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// nextSequence is one more than the highest sequence known of id's
// records: this node's record and its own note of what it published, or,
// when it has neither, the DHT's record (the key may have published from
// another node).
func (n *Node) nextSequence(ctx context.Context, nw *Network, id peer.ID) uint64 {
	var seq uint64
	found := false
	if p, err := n.loadPublished(id); err == nil {
		seq, found = p.Sequence, true
	}
	if b, err := n.values.Get(ipns.RoutingKey(id)); err == nil {
		if r, err := ipns.Unmarshal(b); err == nil {
			seq, found = max(seq, r.Sequence), true
		}
	}
	if !found && nw != nil && nw.Routing != nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		waitRouting(ctx, nw)
		if b, err := nw.Routing.GetValue(ctx, ipns.RoutingKey(id)); err == nil {
			if r, err := ipns.Unmarshal(b); err == nil {
				seq, found = r.Sequence, true
			}
		}
	}
	if !found {
		return 0
	}
	return seq + 1
}

// waitRouting gives a network that just started (the CLI's temporary
// node) a few seconds to fill its routing table.
func waitRouting(ctx context.Context, nw *Network) {
	if nw.Routing.RoutingTableSize() > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for nw.Routing.RoutingTableSize() == 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) savePublished(id peer.ID, p published) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return n.names.Set([]byte(id), b)
}

func (n *Node) loadPublished(id peer.ID) (published, error) {
	var p published
	b, err := n.names.Get([]byte(id))
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(b, &p)
}

// ResolveName returns the best valid record of a name that this node and
// the DHTs hold. A name that does not parse is of kind errs.Invalid; no
// valid record anywhere is errs.NotFound.
func (n *Node) ResolveName(ctx context.Context, name string) (NameRecord, error) {
	id, err := ipns.ParseName(name)
	if err != nil {
		return NameRecord{}, errs.E(errs.Invalid, err)
	}
	key := ipns.RoutingKey(id)
	b, err := n.values.Get(key)
	if nw, _ := n.network(ctx); nw != nil && nw.Routing != nil {
		waitRouting(ctx, nw)
		// The DHTs' GetValue counts this node's record too.
		b, err = nw.Routing.GetValue(ctx, key)
	}
	if err != nil {
		if ctx.Err() != nil {
			return NameRecord{}, errs.E(errs.Canceled, ctx.Err())
		}
		if errors.Is(err, dht.ErrNotFound) || errs.Is(errs.NotFound, err) || errors.Is(err, dht.ErrNoPeers) {
			return NameRecord{}, errs.Errorf(errs.NotFound, "no valid record of %s found (a record expires at the end of its lifetime unless its publisher republishes it)", ipns.Name(id))
		}
		return NameRecord{}, fmt.Errorf("resolve %s: %w", ipns.Name(id), err)
	}
	r, err := ipns.Unmarshal(b)
	if err != nil {
		return NameRecord{}, errs.E(errs.Corrupt, err)
	}
	return recordOf(id, r), nil
}

// ResolvePath returns the /ipfs/ path that p's name leads to, with p's
// segments after those of the record's value, and the shortest TTL of
// the records on the way (the gateway caches /ipns/ answers that long).
func (n *Node) ResolvePath(ctx context.Context, p dag.Path) (dag.Path, time.Duration, error) {
	ttl := time.Duration(1<<63 - 1)
	for depth := 0; p.Name != ""; depth++ {
		if depth == maxNameDepth {
			return dag.Path{}, 0, errs.Errorf(errs.Invalid, "%s: names lead through more than %d names", p, maxNameDepth)
		}
		rec, err := n.ResolveName(ctx, p.Name)
		if err != nil {
			return dag.Path{}, 0, err
		}
		v, err := dag.ParsePath(rec.Value)
		if err != nil {
			return dag.Path{}, 0, errs.E(errs.Corrupt, fmt.Errorf("the record of %s points at %q: %w", rec.Name, rec.Value, err))
		}
		v.Segments = append(v.Segments, p.Segments...)
		p, ttl = v, min(ttl, rec.TTL)
	}
	return p, ttl, nil
}
