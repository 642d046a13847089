package provide

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/share-p2p/share/dht"
)

// maxRegionBits bounds the regions of a cycle at 2^16: at 4096 keys a
// region that is 268 million keys, and one region every 1.2 s of 22 h.
const maxRegionBits = 16

// sweepState is where the reprovide sweep is, as persisted: the cycle
// that began (region 0 due) at Start splits the key space into 2^Bits
// regions by the leading bits of their keyspace points (dht.KeyOf);
// region r is due at Start + r*Interval/2^Bits; Next is the first region
// not yet announced.
type sweepState struct {
	Start time.Time
	Bits  int
	Next  int
}

// regions is the number of regions of the cycle.
func (s sweepState) regions() int { return 1 << s.Bits }

// due returns when region r of the cycle is due.
func (s sweepState) due(r int, interval time.Duration) time.Time {
	return s.Start.Add(time.Duration(int64(interval) / int64(s.regions()) * int64(r)))
}

// advance marks the Next region done; after the last one a new cycle
// begins an interval after this one, split into 2^bits regions.
func (s sweepState) advance(interval time.Duration, bits int) sweepState {
	s.Next++
	if s.Next < s.regions() {
		return s
	}
	return sweepState{Start: s.Start.Add(interval), Bits: bits}
}

// resume returns the state to go on from at now: the next region stays
// due when it is in time; if the node was off past it (or the clock
// jumped), the cycle is shifted so that it is due after delay and the rest
// follow at the usual pace, rather than all the late ones at once.
func (s sweepState) resume(now time.Time, interval, delay time.Duration) sweepState {
	due := s.due(s.Next, interval)
	if due.Before(now) || due.After(now.Add(interval+delay)) {
		s.Start = now.Add(delay).Add(-due.Sub(s.Start))
	}
	return s
}

// sweepStateKey is the state's key in Config.State.
var sweepStateKey = []byte("sweep")

const sweepStateVersion = 1

func (s sweepState) marshal() []byte {
	b := []byte{sweepStateVersion, byte(s.Bits)}
	b = binary.BigEndian.AppendUint64(b, uint64(s.Start.UnixNano()))
	return binary.BigEndian.AppendUint32(b, uint32(s.Next))
}

// errBadState is returned for a stored state that does not decode (the
// sweep then starts afresh).
var errBadState = errors.New("sweep state does not decode")

func unmarshalSweepState(b []byte) (sweepState, error) {
	if len(b) != 14 || b[0] != sweepStateVersion || b[1] > maxRegionBits {
		return sweepState{}, errBadState
	}
	s := sweepState{
		Bits:  int(b[1]),
		Start: time.Unix(0, int64(binary.BigEndian.Uint64(b[2:]))),
		Next:  int(binary.BigEndian.Uint32(b[10:])),
	}
	if s.Next >= s.regions() {
		return sweepState{}, errBadState
	}
	return s, nil
}

// regionBits returns the bits that split n keys into regions of about
// perRegion keys each.
func regionBits(n, perRegion int) int {
	if n <= perRegion {
		return 0
	}
	return min(bits.Len(uint((n-1)/perRegion)), maxRegionBits)
}

// regionOf returns the region of key among 2^b: the leading b bits of its
// keyspace point.
func regionOf(key []byte, b int) int {
	if b == 0 {
		return 0
	}
	k := dht.KeyOf(key)
	return int(binary.BigEndian.Uint32(k[:4]) >> (32 - b))
}

// loadState returns the persisted state, resumed at now, or a new cycle
// that begins after InitialDelay.
func (p *Provider) loadState(ctx context.Context, now time.Time) (sweepState, error) {
	if p.cfg.State != nil {
		b, err := p.cfg.State.Get(sweepStateKey)
		if err == nil {
			if s, err := unmarshalSweepState(b); err == nil {
				return s.resume(now, p.cfg.Interval, p.cfg.InitialDelay), nil
			}
			p.cfg.Logger.Warn("reprovide: sweep state does not decode; starting a new cycle")
		}
	}
	n, err := p.countKeys(ctx)
	if err != nil {
		return sweepState{}, err
	}
	return sweepState{Start: now.Add(p.cfg.InitialDelay), Bits: regionBits(n, p.cfg.RegionKeys)}, nil
}

func (p *Provider) saveState(s sweepState) {
	if p.cfg.State == nil {
		return
	}
	if err := p.cfg.State.Set(sweepStateKey, s.marshal()); err != nil {
		p.cfg.Logger.Warn("reprovide: saving the sweep state", "err", err)
	}
}

// countKeys returns the number of keys Config.Keys lists.
func (p *Provider) countKeys(ctx context.Context) (int, error) {
	n := 0
	err := p.cfg.Keys(ctx, func([]byte) error { n++; return nil })
	if err != nil {
		return 0, fmt.Errorf("reprovide: list keys: %w", err)
	}
	return n, nil
}

// provideRegion announces the keys of region r of 2^b, BatchSize per
// Router.Provide call. It returns how many keys Config.Keys listed in
// all (so the next cycle can size its regions), or -1 if it failed.
func (p *Provider) provideRegion(ctx context.Context, r, b int) (int, error) {
	var keys [][]byte
	total := 0
	err := p.cfg.Keys(ctx, func(key []byte) error {
		total++
		if regionOf(key, b) == r {
			keys = append(keys, slices.Clone(key))
		}
		return nil
	})
	if err != nil {
		return -1, fmt.Errorf("reprovide: list keys: %w", err)
	}
	return total, p.provideAll(ctx, keys)
}

// provideAll announces keys, BatchSize per Router.Provide call, going on
// after a failed call.
func (p *Provider) provideAll(ctx context.Context, keys [][]byte) error {
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
