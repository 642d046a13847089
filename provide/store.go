package provide

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/internal/ticker"
	"github.com/share-p2p/share/p2p/peer"
)

// StoreConfig configures a Store; zero values select the defaults.
type StoreConfig struct {
	// KV persists the records in a keyspace of their own (the
	// repository's *blockstore.Keyspace fits; default: memory only).
	KV share.KV
	// TTL is the lifetime of a record (default 48 h).
	TTL time.Duration
	// MaxPerPeer bounds the records one provider may hold here
	// (default 1 000 000).
	MaxPerPeer int
	// MaxPerKey bounds the providers kept for one key; a new one replaces
	// the record closest to expiry (default 100).
	MaxPerKey int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ErrPeerLimit is returned when a provider holds MaxPerPeer records.
var ErrPeerLimit = errors.New("provider record limit reached")

// record is one provider of one key.
type record struct {
	id      peer.ID
	addrs   []ma.Multiaddr
	expires int64 // unix seconds
}

// Store keeps provider records: which peers provide which keys, for TTL.
// It implements dht.ProviderStore. Its methods are safe for concurrent
// use.
type Store struct {
	cfg     StoreConfig
	mu      sync.Mutex
	recs    map[string][]record
	perPeer map[peer.ID]int
}

// NewStore returns a store, loading the unexpired records of cfg.KV.
func NewStore(cfg StoreConfig) (*Store, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = 48 * time.Hour
	}
	if cfg.MaxPerPeer <= 0 {
		cfg.MaxPerPeer = 1_000_000
	}
	if cfg.MaxPerKey <= 0 {
		cfg.MaxPerKey = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{cfg: cfg, recs: map[string][]record{}, perPeer: map[peer.ID]int{}}
	if cfg.KV == nil {
		return s, nil
	}
	now := cfg.Now().Unix()
	var stale [][]byte
	err := cfg.KV.Iterate(func(k, v []byte) error {
		key, r, err := decodeRecord(k, v)
		if err != nil || r.expires <= now {
			stale = append(stale, slices.Clone(k))
			return nil
		}
		s.put(key, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load provider records: %w", err)
	}
	for _, k := range stale {
		cfg.KV.Delete(k)
	}
	return s, nil
}

// AddProvider records that prov provides key, for TTL from now.
func (s *Store) AddProvider(key []byte, prov peer.AddrInfo) error {
	r := record{id: prov.ID, addrs: prov.Addrs, expires: s.cfg.Now().Add(s.cfg.TTL).Unix()}
	s.mu.Lock()
	old, replaced, err := s.putChecked(string(key), r)
	s.mu.Unlock()
	if err != nil || s.cfg.KV == nil {
		return err
	}
	if replaced != "" {
		s.cfg.KV.Delete(recordKey(key, replaced))
	}
	// A renewal within the hour need not be written again: a restart
	// shortens the record's life by an hour at most.
	if old.id == r.id && old.expires > r.expires-3600 && slices.EqualFunc(old.addrs, r.addrs, ma.Multiaddr.Equal) {
		return nil
	}
	return s.cfg.KV.Set(recordKey(key, r.id), encodeRecord(r))
}

// putChecked adds or renews r under key, enforcing the limits. It returns
// the record r renews (zero if new) and the provider it evicted, if any.
func (s *Store) putChecked(key string, r record) (old record, evicted peer.ID, err error) {
	rs := s.recs[key]
	for i := range rs {
		if rs[i].id == r.id {
			old = rs[i]
			rs[i] = r
			return old, "", nil
		}
	}
	if s.perPeer[r.id] >= s.cfg.MaxPerPeer {
		return old, "", fmt.Errorf("%s: %w", r.id, ErrPeerLimit)
	}
	if len(rs) >= s.cfg.MaxPerKey {
		i := 0
		for j := range rs {
			if rs[j].expires < rs[i].expires {
				i = j
			}
		}
		evicted = rs[i].id
		s.dropPeer(evicted)
		rs = slices.Delete(rs, i, i+1)
	}
	s.recs[key] = append(rs, r)
	s.perPeer[r.id]++
	return old, evicted, nil
}

func (s *Store) put(key []byte, r record) {
	s.putChecked(string(key), r)
}

func (s *Store) dropPeer(id peer.ID) {
	if s.perPeer[id]--; s.perPeer[id] <= 0 {
		delete(s.perPeer, id)
	}
}

// Providers returns up to max unexpired providers of key (max <= 0: all),
// most recently renewed first.
func (s *Store) Providers(key []byte, max int) []peer.AddrInfo {
	now := s.cfg.Now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.recs[string(key)]
	var out []peer.AddrInfo
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].expires <= now {
			continue
		}
		if max > 0 && len(out) == max {
			break
		}
		out = append(out, peer.AddrInfo{ID: rs[i].id, Addrs: slices.Clone(rs[i].addrs)})
	}
	return out
}

// Len returns the number of records held (expired ones included until the
// next Expire).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, rs := range s.recs {
		n += len(rs)
	}
	return n
}

// Expire drops the expired records and returns how many it dropped.
func (s *Store) Expire() int {
	now := s.cfg.Now().Unix()
	type gone struct {
		key string
		id  peer.ID
	}
	var dropped []gone
	s.mu.Lock()
	for k, rs := range s.recs {
		kept := rs[:0]
		for _, r := range rs {
			if r.expires > now {
				kept = append(kept, r)
				continue
			}
			s.dropPeer(r.id)
			dropped = append(dropped, gone{k, r.id})
		}
		if len(kept) == 0 {
			delete(s.recs, k)
		} else {
			clear(rs[len(kept):])
			s.recs[k] = kept
		}
	}
	s.mu.Unlock()
	if s.cfg.KV != nil {
		for _, g := range dropped {
			s.cfg.KV.Delete(recordKey([]byte(g.key), g.id))
		}
	}
	return len(dropped)
}

// recordKey is uvarint(len(key)) key peerID: records of a key are
// contiguous.
func recordKey(key []byte, id peer.ID) []byte {
	b := binary.AppendUvarint(nil, uint64(len(key)))
	b = append(b, key...)
	return append(b, id...)
}

// encodeRecord is uvarint(expires) then uvarint-prefixed addresses.
func encodeRecord(r record) []byte {
	b := binary.AppendUvarint(nil, uint64(r.expires))
	for _, a := range r.addrs {
		b = binary.AppendUvarint(b, uint64(len(a.Bytes())))
		b = append(b, a.Bytes()...)
	}
	return b
}

func decodeRecord(k, v []byte) ([]byte, record, error) {
	var r record
	bad := errors.New("bad provider record")
	l, n := binary.Uvarint(k)
	if n <= 0 || uint64(len(k)-n) < l {
		return nil, r, bad
	}
	key := slices.Clone(k[n : n+int(l)])
	r.id = peer.ID(k[n+int(l):])
	if r.id.Validate() != nil {
		return nil, r, bad
	}
	exp, n := binary.Uvarint(v)
	if n <= 0 {
		return nil, r, bad
	}
	r.expires = int64(exp)
	v = v[n:]
	for len(v) > 0 {
		l, n := binary.Uvarint(v)
		if n <= 0 || uint64(len(v)-n) < l {
			return nil, r, bad
		}
		a, err := ma.NewMultiaddrBytes(v[n : n+int(l)])
		if err != nil {
			return nil, r, bad
		}
		r.addrs = append(r.addrs, a)
		v = v[n+int(l):]
	}
	return key, r, nil
}

// RunExpiry drops expired records every interval until ctx ends.
func (s *Store) RunExpiry(ctx context.Context, interval time.Duration) {
	ticker.Run(ctx, interval, func() { s.Expire() })
}
