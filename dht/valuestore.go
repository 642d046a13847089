package dht

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/internal/ticker"
)

// Validator checks and orders the values of one namespace of keys
// (ipns.Validator for "/ipns/..."). A DHT stores and returns only values
// its namespace's validator accepts.
type Validator interface {
	// Validate reports whether value is valid under key now.
	Validate(key, value []byte) error
	// Compare orders two valid values of a key: positive when a is
	// better, negative when b is, zero when they are the same.
	Compare(a, b []byte) int
}

// Errors of values.
var (
	// ErrNoValidator: the key's namespace has no validator, so its
	// values are neither stored nor served.
	ErrNoValidator = errors.New("no validator for the key's namespace")
	// ErrOlderValue: a value is worse than the one already stored.
	ErrOlderValue = errors.New("value is older than the one stored")
	// ErrStoreFull: the store holds MaxValues keys.
	ErrStoreFull = errors.New("value store full")
)

// ValueStoreConfig configures a ValueStore. KV and Validators are
// required.
type ValueStoreConfig struct {
	// KV holds the records (a keyspace of the repository).
	KV share.KV
	// Validators are by namespace: "ipns" checks the keys "/ipns/...".
	Validators map[string]Validator
	// MaxAge is how long a record is kept after it was received, unless
	// its own validity ends first (default 36 h, kad-dht's: a publisher
	// republishes well within it).
	MaxAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxValues bounds the keys stored (default 65536: at most 640 MiB
	// of IPNS records): a record of a new key beyond it is refused, so
	// that a flood of names made up for the purpose cannot fill the
	// disk. Expired records make room.
	MaxValues int
}

// ValueStore keeps the value records a node serves, one per key: the best
// valid one it was given. The WAN and LAN DHTs of a node share one.
// Its methods are safe for concurrent use.
type ValueStore struct {
	cfg ValueStoreConfig
	mu  sync.Mutex // orders the read, compare and write of Put
	n   int        // keys stored, under mu
}

// NewValueStore returns a store over cfg.KV.
func NewValueStore(cfg ValueStoreConfig) (*ValueStore, error) {
	if cfg.KV == nil || len(cfg.Validators) == 0 {
		return nil, errors.New("value store config: KV and Validators are required")
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 36 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxValues <= 0 {
		cfg.MaxValues = 1 << 16
	}
	s := &ValueStore{cfg: cfg}
	err := cfg.KV.Iterate(func(_, _ []byte) error { s.n++; return nil })
	return s, err
}

// validator returns the validator of key's namespace: key is
// "/NAMESPACE/...".
func (s *ValueStore) validator(key []byte) (Validator, error) {
	rest, ok := bytes.CutPrefix(key, []byte("/"))
	ns, _, ok2 := bytes.Cut(rest, []byte("/"))
	if v := s.cfg.Validators[string(ns)]; ok && ok2 && v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("%w: key %q", ErrNoValidator, key)
}

// Validate checks value under key with its namespace's validator.
func (s *ValueStore) Validate(key, value []byte) error {
	v, err := s.validator(key)
	if err != nil {
		return err
	}
	return v.Validate(key, value)
}

// Compare orders two values of key as its validator does.
func (s *ValueStore) Compare(key, a, b []byte) int {
	v, err := s.validator(key)
	if err != nil {
		return 0
	}
	return v.Compare(a, b)
}

// Put stores value under key if it is valid and not worse than the value
// stored (ErrOlderValue).
func (s *ValueStore) Put(key, value []byte) error {
	v, err := s.validator(key)
	if err != nil {
		return err
	}
	if err := v.Validate(key, value); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.cfg.KV.Get(key)
	switch {
	case err == nil && s.live(key, old) && v.Compare(old[8:], value) > 0:
		return ErrOlderValue
	case err != nil && s.n >= s.cfg.MaxValues:
		return fmt.Errorf("%w: %d keys", ErrStoreFull, s.n)
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(s.cfg.Now().UnixNano()))
	if err := s.cfg.KV.Set(key, append(b, value...)); err != nil {
		return err
	}
	if old == nil {
		s.n++
	}
	return nil
}

// Get returns the value stored under key, if it is still valid and not
// older than MaxAge; an error of kind errs.NotFound otherwise.
func (s *ValueStore) Get(key []byte) ([]byte, error) {
	b, err := s.cfg.KV.Get(key)
	if err != nil {
		return nil, err
	}
	if !s.live(key, b) {
		return nil, errs.Errorf(errs.NotFound, "value of %q expired", key)
	}
	return b[8:], nil
}

// live reports whether a stored entry is young enough and valid.
func (s *ValueStore) live(key, b []byte) bool {
	if len(b) < 8 {
		return false
	}
	received := time.Unix(0, int64(binary.BigEndian.Uint64(b)))
	if s.cfg.Now().Sub(received) > s.cfg.MaxAge {
		return false
	}
	return s.Validate(key, b[8:]) == nil
}

// Expire deletes the records that expired or outlived MaxAge, and
// returns how many.
func (s *ValueStore) Expire() (int, error) {
	var dead [][]byte
	err := s.cfg.KV.Iterate(func(key, val []byte) error {
		if !s.live(key, val) {
			dead = append(dead, bytes.Clone(key))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range dead {
		// A Put since the scan may have stored a live value.
		if b, err := s.cfg.KV.Get(k); err != nil || s.live(k, b) {
			continue
		}
		if err := s.cfg.KV.Delete(k); err != nil {
			return n, err
		}
		n++
		s.n--
	}
	return n, nil
}

// RunExpiry runs Expire every interval until ctx ends.
func (s *ValueStore) RunExpiry(ctx context.Context, interval time.Duration) {
	ticker.Run(ctx, interval, func() { s.Expire() })
}
