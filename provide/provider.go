package provide

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/p2p/peer"
)

// Router is the part of the DHT a Provider uses (*dht.DHT implements it).
type Router interface {
	Provide(ctx context.Context, keys [][]byte) error
	FindProviders(ctx context.Context, key []byte, max int) <-chan peer.AddrInfo
}

// Strategy says what add announces (Provide.Strategy in the config).
type Strategy int

// The strategies.
const (
	// Roots announces the root of each added DAG (the default).
	Roots Strategy = iota
	// All announces every block.
	All
	// None announces nothing.
	None
)

// ParseStrategy parses "roots", "all" or "none".
func ParseStrategy(s string) (Strategy, error) {
	switch s {
	case "roots", "":
		return Roots, nil
	case "all":
		return All, nil
	case "none":
		return None, nil
	}
	return 0, fmt.Errorf("provide strategy %q: want roots, all or none", s)
}

func (s Strategy) String() string { return [...]string{"roots", "all", "none"}[s] }

// Config configures a Provider. Router is required; the zero value of every
// other field selects its documented default.
type Config struct {
	Router   Router
	Strategy Strategy
	// Keys calls fn for each multihash to re-announce, per the strategy
	// (the node gives its pinned roots for Roots, every block for All),
	// until fn returns an error, which it returns. fn does not keep key.
	// The sweep lists the keys once per region, so they are streamed,
	// never held all at once. Nil disables reproviding.
	Keys func(ctx context.Context, fn func(key []byte) error) error
	// Interval between re-announcements of a key (default 22 h: records
	// live 48 h). The sweep spreads the regions of the key space evenly
	// over it.
	Interval time.Duration
	// InitialDelay before the first region of a new sweep, or before the
	// region a restart resumes at when the node was off past its time
	// (default 1 min).
	InitialDelay time.Duration
	// RegionKeys is the number of keys the sweep aims at per region: a
	// cycle splits the key space into the power of two of regions that
	// comes closest above (default 4096; at most 65 536 regions).
	RegionKeys int
	// State persists where the sweep is, so that a restart goes on from
	// there (default: memory only, a restart begins a new cycle).
	State share.KV
	// BatchSize is the number of keys per Router.Provide call while
	// re-announcing (default 10 000).
	BatchSize int
	Logger    *slog.Logger
}

// Provider announces content and finds providers.
type Provider struct {
	cfg Config
}

// New returns a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Router == nil {
		return nil, errors.New("provide config: Router is required")
	}
	if cfg.Strategy < Roots || cfg.Strategy > None {
		return nil, fmt.Errorf("provide config: Strategy %d unknown", cfg.Strategy)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 22 * time.Hour
	}
	if cfg.InitialDelay <= 0 {
		cfg.InitialDelay = time.Minute
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 10000
	}
	if cfg.RegionKeys <= 0 {
		cfg.RegionKeys = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Provider{cfg: cfg}, nil
}

// Announce announces what an add stored, per the strategy: root under
// Roots, root and blocks under All, nothing under None.
func (p *Provider) Announce(ctx context.Context, root cid.Cid, blocks []cid.Cid) error {
	var keys [][]byte
	switch p.cfg.Strategy {
	case None:
		return nil
	case Roots:
		keys = [][]byte{root.Hash()}
	case All:
		keys = append(keys, root.Hash())
		for _, c := range blocks {
			keys = append(keys, c.Hash())
		}
	}
	if err := p.cfg.Router.Provide(ctx, keys); err != nil {
		return fmt.Errorf("announce %s: %w", root, err)
	}
	return nil
}

// Reprovide re-announces every key of Config.Keys now, in batches.
func (p *Provider) Reprovide(ctx context.Context) error {
	if p.cfg.Keys == nil || p.cfg.Strategy == None {
		return nil
	}
	var keys [][]byte
	err := p.cfg.Keys(ctx, func(key []byte) error {
		keys = append(keys, slices.Clone(key))
		return nil
	})
	if err != nil {
		return fmt.Errorf("reprovide: list keys: %w", err)
	}
	return p.provideAll(ctx, keys)
}

// Run sweeps the key space until ctx ends: the keys of Config.Keys fall
// into regions by their keyspace point (about RegionKeys each), and each
// region is re-announced in its turn, spread evenly over Interval, so that
// a million keys are a few thousand every few minutes rather than all at
// once (and each region's keys share their DHT lookups). Where the sweep
// is persists in Config.State after every region. A failure is logged
// (see logFailure), never returned: the next region, or the next cycle,
// tries again.
func (p *Provider) Run(ctx context.Context) {
	if p.cfg.Keys == nil || p.cfg.Strategy == None {
		return
	}
	st, ok := p.start(ctx)
	noPeersSaid := false
	for ok {
		if !sleepUntil(ctx, st.due(st.Next, p.cfg.Interval)) {
			return
		}
		start := time.Now()
		total, err := p.provideRegion(ctx, st.Next, st.Bits)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			noPeersSaid = p.logFailure(err, noPeersSaid)
		} else {
			noPeersSaid = false
			p.cfg.Logger.Debug("reprovided", "region", st.Next, "of", st.regions(), "took", time.Since(start))
		}
		bits := st.Bits
		if total >= 0 {
			bits = regionBits(total, p.cfg.RegionKeys)
		}
		st = st.advance(p.cfg.Interval, bits)
		p.saveState(st)
	}
}

// start loads the sweep's state, retrying after InitialDelay while the
// keys cannot be listed. It reports false if ctx ended first.
func (p *Provider) start(ctx context.Context) (sweepState, bool) {
	for {
		st, err := p.loadState(ctx, time.Now())
		if err == nil {
			return st, true
		}
		p.cfg.Logger.Warn("reprovide", "err", err)
		if !sleepUntil(ctx, time.Now().Add(p.cfg.InitialDelay)) {
			return sweepState{}, false
		}
	}
}

// sleepUntil waits until t and reports true, or false if ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// logFailure says why a re-announcement failed and returns whether "no
// DHT peers" has now been said. No DHT peers is the normal state of a
// node that only has a LAN (mDNS finds its peers, and they need no
// records): it is said once, at info, and again only after a
// re-announcement worked in between. Any other failure is a warning each
// time.
func (p *Provider) logFailure(err error, noPeersSaid bool) bool {
	if !errors.Is(err, dht.ErrNoPeers) {
		p.cfg.Logger.Warn("reprovide failed", "err", err)
		return noPeersSaid
	}
	if noPeersSaid {
		p.cfg.Logger.Debug("reprovide: still no DHT peers", "err", err)
	} else {
		p.cfg.Logger.Info("reprovide: no DHT peers; content is found on the LAN only until there are some (Bootstrap)")
	}
	return true
}

// FindProviders streams the providers of c as they are found (the
// node's own records first), at most max (<= 0: no limit). The channel
// closes when the search ends; drain it or cancel ctx.
func (p *Provider) FindProviders(ctx context.Context, c cid.Cid, max int) <-chan peer.AddrInfo {
	return p.cfg.Router.FindProviders(ctx, c.Hash(), max)
}
