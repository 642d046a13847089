package provide

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"

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
	// Keys lists the multihashes to re-announce, per the strategy (the
	// node gives its pinned roots for Roots, every block for All). Nil
	// disables reproviding.
	Keys func(ctx context.Context) ([][]byte, error)
	// Interval between re-announcements (default 22 h: records live 48 h).
	Interval time.Duration
	// InitialDelay before the first re-announcement (default 1 min).
	InitialDelay time.Duration
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

// Reprovide re-announces every key of Config.Keys once, in batches.
func (p *Provider) Reprovide(ctx context.Context) error {
	if p.cfg.Keys == nil || p.cfg.Strategy == None {
		return nil
	}
	keys, err := p.cfg.Keys(ctx)
	if err != nil {
		return fmt.Errorf("reprovide: list keys: %w", err)
	}
	var errs []error
	for len(keys) > 0 {
		n := min(len(keys), p.cfg.BatchSize)
		if err := p.cfg.Router.Provide(ctx, keys[:n]); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
		keys = keys[n:]
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reprovide: %w", err)
	}
	return nil
}

// Run re-announces after InitialDelay, then every Interval, until ctx
// ends. A failure is logged (see logFailure), never returned: the next
// round tries again.
func (p *Provider) Run(ctx context.Context) {
	t := time.NewTimer(p.cfg.InitialDelay)
	defer t.Stop()
	noPeersSaid := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		if err := p.Reprovide(ctx); err != nil {
			noPeersSaid = p.logFailure(err, noPeersSaid)
		} else {
			noPeersSaid = false
			p.cfg.Logger.Debug("reprovided", "took", time.Since(start))
		}
		t.Reset(p.cfg.Interval)
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
