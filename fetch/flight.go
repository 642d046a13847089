package fetch

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"
)

// flight is a fetch of a DAG under way. Another Read or Have of the same
// DAG waits for it to land rather than fetch the same blocks a second
// time (which would take as long again and cost the providers twice),
// seeing its progress meanwhile, and then reads the blocks it stored. A
// flight that fails lands too: a waiter then fetches what is missing.
type flight struct {
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	watchers []func(Progress)
}

// watch shows fn the flight's progress until it lands; the returned
// function stops it.
func (fl *flight) watch(fn func(Progress)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	fl.mu.Lock()
	fl.watchers = append(fl.watchers, fn)
	i := len(fl.watchers) - 1
	fl.mu.Unlock()
	return func() {
		fl.mu.Lock()
		fl.watchers[i] = nil
		fl.mu.Unlock()
	}
}

// notify shows p to the waiters.
func (fl *flight) notify(p Progress) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, fn := range fl.watchers {
		if fn != nil {
			fn(p)
		}
	}
}

// localOrClaim reports whether the DAG under root is all here; if it is
// not, it waits for a fetch of it under way, if any, and looks again, and
// else returns the flight that the caller's fetch of it is, which it must
// land.
func (f *Fetcher) localOrClaim(ctx context.Context, root cid.Cid, opts Options) (bool, *flight, error) {
	for {
		local, err := f.isLocal(ctx, root)
		if err != nil || local {
			return local, nil, err
		}
		fl, mine := f.claim(root)
		if mine {
			return false, fl, nil
		}
		stop := fl.watch(opts.Progress)
		select {
		case <-fl.done:
			stop()
		case <-ctx.Done():
			stop()
			return false, nil, ctx.Err()
		}
	}
}

// claim returns the flight of root and whether the caller has just
// started it.
func (f *Fetcher) claim(root cid.Cid) (*flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl := f.flights[root]; fl != nil {
		return fl, false
	}
	if f.flights == nil {
		f.flights = make(map[cid.Cid]*flight)
	}
	fl := &flight{done: make(chan struct{})}
	f.flights[root] = fl
	return fl, true
}

// land ends the flight of root (nil: none): what it fetched is visible to
// readers through Local, or being committed (which Local waits for).
func (f *Fetcher) land(root cid.Cid, fl *flight) {
	if fl == nil {
		return
	}
	fl.once.Do(func() {
		f.mu.Lock()
		if f.flights[root] == fl {
			delete(f.flights, root)
		}
		f.mu.Unlock()
		close(fl.done)
	})
}
