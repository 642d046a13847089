// Package gc removes every block that no pin reaches. It marks from the pin
// set, then sweeps the blockstore. A Lock keeps it from sweeping blocks that
// an add or a fetch has written but not pinned yet.
package gc

import (
	"context"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/pin"
)

// Lock coordinates gc with writers. Writers (add, fetch followed by pin)
// hold it shared from their first block until the pin that protects their
// blocks is durable; gc holds it exclusively, so it never sees a half-done
// write. The zero value is ready to use.
type Lock struct{ mu sync.RWMutex }

// Writer takes the shared side and returns its release.
func (l *Lock) Writer() (unlock func()) { l.mu.RLock(); return l.mu.RUnlock }

// Collector takes the exclusive side and returns its release.
func (l *Lock) Collector() (unlock func()) { l.mu.Lock(); return l.mu.Unlock }

// Store is what gc needs of the blockstore.
type Store interface {
	share.Getter
	ForEach(ctx context.Context, fn func(mh multihash.Multihash, size int) error) error
	Delete(ctx context.Context, mhs []multihash.Multihash) (blocks int, bytes int64, err error)
	Reclaim(ctx context.Context) error
}

// Result says what a collection removed.
type Result struct {
	Blocks int
	Bytes  int64
}

// Collect removes every block that no pin in pins reaches. It fails, and
// removes nothing, if a pinned DAG cannot be walked (a missing inner block
// would otherwise hide live children).
func Collect(ctx context.Context, lock *Lock, store Store, pins *pin.Set) (Result, error) {
	return CollectUntil(ctx, lock, store, pins, 0)
}

// CollectUntil is Collect that stops once it has freed at least need bytes
// (need <= 0: no limit), for auto-gc that only brings the repository back
// under its limit.
func CollectUntil(ctx context.Context, lock *Lock, store Store, pins *pin.Set, need int64) (Result, error) {
	defer lock.Collector()()
	live, err := mark(ctx, store, pins)
	if err != nil {
		return Result{}, err
	}
	var dead []multihash.Multihash
	var deadBytes int64
	err = store.ForEach(ctx, func(mh multihash.Multihash, size int) error {
		if need > 0 && deadBytes >= need {
			return nil
		}
		if _, ok := live[string(mh)]; !ok {
			dead = append(dead, append(multihash.Multihash(nil), mh...))
			deadBytes += int64(size)
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("gc sweep: %w", err)
	}
	if len(dead) == 0 {
		return Result{}, nil
	}
	n, bytes, err := store.Delete(ctx, dead)
	if err != nil {
		return Result{Blocks: n, Bytes: bytes}, fmt.Errorf("gc sweep: %w", err)
	}
	if err := store.Reclaim(ctx); err != nil {
		return Result{Blocks: n, Bytes: bytes}, fmt.Errorf("gc reclaim: %w", err)
	}
	return Result{Blocks: n, Bytes: bytes}, nil
}

// mark returns the multihashes of every block some pin keeps.
func mark(ctx context.Context, g share.Getter, pins *pin.Set) (map[string]struct{}, error) {
	list, err := pins.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc mark: %w", err)
	}
	live := make(map[string]struct{})
	for _, p := range list {
		if p.Mode == pin.Direct {
			live[string(p.Cid.Hash())] = struct{}{}
			continue
		}
		err := dag.Walk(ctx, g, p.Cid, dag.WalkOptions{}, func(c cid.Cid) error {
			live[string(c.Hash())] = struct{}{}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("gc mark: pin %s: %w", p.Cid, err)
		}
	}
	return live, nil
}
