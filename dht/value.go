package dht

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/share-p2p/share/p2p/peer"
)

// handlePutValue stores a PUT_VALUE's record, if it is valid and not
// older than the one stored, and echoes the request as kad-dht does. A
// refused record resets the stream: that is how kad-dht says no.
func (d *DHT) handlePutValue(from peer.ID, m *Message) (*Message, error) {
	r := m.Record
	if r == nil || !bytes.Equal(r.Key, m.Key) {
		return nil, fmt.Errorf("%w: PUT_VALUE without a record of its key", ErrBadMessage)
	}
	if err := d.cfg.Values.Put(m.Key, r.Value); err != nil {
		d.log.Debug("value refused", "from", from, "key", m.Key, "err", err)
		return nil, fmt.Errorf("PUT_VALUE from %s: %w", from, err)
	}
	return &Message{Type: PutValue, Key: m.Key, Record: &Record{Key: m.Key, Value: r.Value}}, nil
}

// handleGetValue answers a GET_VALUE: the record stored, if any, and the
// closer peers.
func (d *DHT) handleGetValue(from peer.ID, m *Message) (*Message, error) {
	if _, err := d.cfg.Values.validator(m.Key); err != nil {
		return nil, fmt.Errorf("%w: GET_VALUE: %v", ErrBadMessage, err)
	}
	resp := &Message{Type: GetValue, Key: m.Key, CloserPeers: d.closerPeers(KeyOf(m.Key), from)}
	if v, err := d.cfg.Values.Get(m.Key); err == nil {
		resp.Record = &Record{Key: m.Key, Value: v}
	}
	return resp, nil
}

// PutValue stores value under key here and at the K peers closest to key.
// It returns the number of peers that took it, and fails if the value is
// invalid, older than one stored here, or taken by no peer.
func (d *DHT) PutValue(ctx context.Context, key, value []byte) (int, error) {
	if d.mode == ModeOff {
		return 0, ErrOff
	}
	if d.cfg.Values == nil {
		return 0, ErrNoValidator
	}
	if err := d.cfg.Values.Put(key, value); err != nil {
		return 0, fmt.Errorf("put value: %w", err)
	}
	peers, err := d.lookup(ctx, FindNode, key, d.cfg.K, nil)
	if err != nil && len(peers) == 0 {
		return 0, fmt.Errorf("put value: %w", err)
	}
	n := d.sendValue(ctx, key, value, peers)
	if n == 0 {
		return 0, fmt.Errorf("put value: no peer took it: %w", ErrNoPeers)
	}
	return n, nil
}

// sendValue sends PUT_VALUE to every peer at once and returns how many
// took the value (echoed it back).
func (d *DHT) sendValue(ctx context.Context, key, value []byte, peers []peer.AddrInfo) int {
	var ok atomic.Int32
	var wg sync.WaitGroup
	msg := &Message{Type: PutValue, Key: key, Record: &Record{Key: key, Value: value}}
	for _, p := range peers {
		wg.Go(func() {
			resp, err := d.query(ctx, p, msg)
			if err == nil && resp.Record != nil && bytes.Equal(resp.Record.Value, value) {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// ValueStats are the figures of one GetValue.
type ValueStats struct {
	// Records is the number of valid records received (this node's
	// own counts), Invalid the number refused by the validator.
	Records, Invalid int
	// Repaired is the number of peers sent the best record because they
	// answered an older one or none (the repair runs after GetValue
	// returns; Config.OnRepair sees its figure).
	Repaired int
}

// GetValue returns the best valid value of key that this node and a
// lookup of the peers closest to it find. The lookup ends when
// ValueQuorum valid records arrived (as kad-dht's), or when the K closest
// peers answered. Records that do not validate are ignored, so a peer
// answering a forged or replayed record cannot win; afterwards the
// closest peers that answered an older record, or none, are sent the
// best one in the background.
func (d *DHT) GetValue(ctx context.Context, key []byte) ([]byte, error) {
	v, _, err := d.GetValueStats(ctx, key)
	return v, err
}

// GetValueStats is GetValue returning its figures.
func (d *DHT) GetValueStats(ctx context.Context, key []byte) ([]byte, ValueStats, error) {
	var st ValueStats
	if d.mode == ModeOff {
		return nil, st, ErrOff
	}
	if d.cfg.Values == nil {
		return nil, st, ErrNoValidator
	}
	if _, err := d.cfg.Values.validator(key); err != nil {
		return nil, st, err
	}
	s := &valueSearch{d: d, key: key, holders: map[peer.ID]peer.AddrInfo{}, st: &st}
	if v, err := d.cfg.Values.Get(key); err == nil {
		s.offer(peer.AddrInfo{ID: d.self}, v)
	}
	closest, err := d.lookup(ctx, GetValue, key, d.cfg.K, s.onResp)
	if s.best == nil {
		if err == nil {
			err = ErrNotFound
		}
		return nil, st, fmt.Errorf("get value %q: %w", key, err)
	}
	d.cfg.Values.Put(key, s.best) // keeps a copy, unless ours is as good
	s.repair(closest)
	return s.best, st, nil
}

// valueSearch is the state of one GetValue. Only the lookup's goroutine
// touches it.
type valueSearch struct {
	d    *DHT
	key  []byte
	best []byte
	// holders answered the best record; older answered a worse one.
	holders map[peer.ID]peer.AddrInfo
	older   []peer.AddrInfo
	st      *ValueStats
}

// onResp takes in an answer's record and ends the lookup at the quorum.
func (s *valueSearch) onResp(from peer.AddrInfo, m *Message) bool {
	r := m.Record
	if r == nil || !bytes.Equal(r.Key, s.key) {
		return false
	}
	if err := s.d.cfg.Values.Validate(s.key, r.Value); err != nil {
		s.st.Invalid++
		s.d.log.Debug("invalid value", "from", from.ID, "key", s.key, "err", err)
		return false
	}
	if !s.offer(from, r.Value) {
		s.older = append(s.older, from)
	}
	return s.st.Records >= s.d.cfg.ValueQuorum
}

// offer counts a valid value from a peer; it reports whether the value is
// the best so far.
func (s *valueSearch) offer(from peer.AddrInfo, v []byte) bool {
	s.st.Records++
	c := 1
	if s.best != nil {
		c = s.d.cfg.Values.Compare(s.key, v, s.best)
	}
	switch {
	case c > 0:
		for _, h := range s.holders {
			s.older = append(s.older, h)
		}
		s.best, s.holders = v, map[peer.ID]peer.AddrInfo{from.ID: from}
	case c == 0:
		s.holders[from.ID] = from
	default:
		return false
	}
	return true
}

// repair sends the best record, in the background, to the closest peers
// and those that answered worse, unless they hold it.
func (s *valueSearch) repair(closest []peer.AddrInfo) {
	d := s.d
	var to []peer.AddrInfo
	seen := map[peer.ID]bool{}
	for _, p := range append(closest, s.older...) {
		if _, holds := s.holders[p.ID]; !holds && !seen[p.ID] && p.ID != d.self {
			seen[p.ID] = true
			to = append(to, p)
		}
	}
	s.st.Repaired = len(to)
	if len(to) == 0 || d.ctx.Err() != nil {
		return
	}
	key, best := s.key, s.best
	d.wg.Go(func() {
		n := d.sendValue(d.ctx, key, best, to)
		if d.cfg.OnRepair != nil {
			d.cfg.OnRepair(key, n)
		}
	})
}

// PutValue stores value under key in each DHT; it returns the number of
// peers that took it in all, and fails only if all failed.
func (d *Dual) PutValue(ctx context.Context, key, value []byte) (int, error) {
	var n atomic.Int32
	err := d.all(func(x *DHT) error {
		k, err := x.PutValue(ctx, key, value)
		n.Add(int32(k))
		return err
	})
	return int(n.Load()), err
}

// GetValue asks each DHT at once and returns the better of their values;
// it fails only if both found none.
func (d *Dual) GetValue(ctx context.Context, key []byte) ([]byte, error) {
	dhts := d.each()
	vals := make([][]byte, len(dhts))
	err := d.all(func(x *DHT) error {
		v, err := x.GetValue(ctx, key)
		for i := range dhts {
			if dhts[i] == x {
				vals[i] = v
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var best []byte
	for i, v := range vals {
		if v != nil && (best == nil || dhts[i].cfg.Values.Compare(key, v, best) > 0) {
			best = v
		}
	}
	return best, nil
}

// Values returns the value store (nil without one).
func (d *DHT) Values() *ValueStore { return d.cfg.Values }
