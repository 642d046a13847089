// Package pin keeps the pin set: the roots whose content the repository
// must keep. A recursive pin keeps a whole DAG, a direct pin one block; a
// pin may carry a name. Pins live in the blockstore's database, each write
// synced, so a pin exists only once it is durable.
package pin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/dag"
)

// Mode says how much of a DAG a pin keeps.
type Mode string

// Pin modes.
const (
	Recursive Mode = "recursive"
	Direct    Mode = "direct"
)

// ErrNotPinned is returned when removing or reading a pin that does not exist.
var ErrNotPinned = errors.New("not pinned")

// Pin is one entry of the pin set.
type Pin struct {
	Cid  cid.Cid
	Mode Mode
	Name string
}

// KV is the storage a Set needs; *blockstore.Keyspace implements it.
type KV interface {
	Get(key []byte) ([]byte, error)
	Set(key, val []byte) error
	Delete(key []byte) error
	Iterate(fn func(key, val []byte) error) error
}

// Set is the pin set. It is safe for concurrent use.
type Set struct {
	mu sync.Mutex
	kv KV
}

// New returns the pin set stored in kv.
func New(kv KV) *Set { return &Set{kv: kv} }

type record struct {
	Mode Mode   `json:"m"`
	Name string `json:"n,omitempty"`
}

// Add pins c durably, replacing any earlier pin of c. Checking that the
// content is complete is the caller's job (see Complete).
func (s *Set) Add(ctx context.Context, c cid.Cid, mode Mode, name string) error {
	if mode != Recursive && mode != Direct {
		return fmt.Errorf("pin %s: bad mode %q", c, mode)
	}
	b, err := json.Marshal(record{Mode: mode, Name: name})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.kv.Set(c.Bytes(), b); err != nil {
		return fmt.Errorf("pin %s: %w", c, err)
	}
	return nil
}

// Remove unpins c.
func (s *Set) Remove(ctx context.Context, c cid.Cid) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(c); err != nil {
		return err
	}
	if err := s.kv.Delete(c.Bytes()); err != nil {
		return fmt.Errorf("unpin %s: %w", c, err)
	}
	return nil
}

// Get returns the pin of c, or an error wrapping ErrNotPinned.
func (s *Set) Get(c cid.Cid) (Pin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(c)
}

func (s *Set) get(c cid.Cid) (Pin, error) {
	b, err := s.kv.Get(c.Bytes())
	if errors.Is(err, blockstore.ErrNotFound) {
		return Pin{}, fmt.Errorf("%s: %w", c, ErrNotPinned)
	}
	if err != nil {
		return Pin{}, err
	}
	return decode(c.Bytes(), b)
}

func decode(key, val []byte) (Pin, error) {
	c, err := cid.Cast(key)
	if err != nil {
		return Pin{}, fmt.Errorf("corrupt pin key %x: %w", key, err)
	}
	var r record
	if err := json.Unmarshal(val, &r); err != nil {
		return Pin{}, fmt.Errorf("corrupt pin %s: %w", c, err)
	}
	return Pin{Cid: c, Mode: r.Mode, Name: r.Name}, nil
}

// List returns every pin, sorted by name then CID.
func (s *Set) List(ctx context.Context) ([]Pin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pins []Pin
	err := s.kv.Iterate(func(k, v []byte) error {
		p, err := decode(k, v)
		if err != nil {
			return err
		}
		pins = append(pins, p)
		return ctx.Err()
	})
	sort.Slice(pins, func(i, j int) bool {
		if pins[i].Name != pins[j].Name {
			return pins[i].Name < pins[j].Name
		}
		return pins[i].Cid.KeyString() < pins[j].Cid.KeyString()
	})
	return pins, err
}

// Complete checks that every block a pin of c with this mode would keep is
// present and intact, re-hashing each one. It returns the first problem.
func Complete(ctx context.Context, g dag.BlockGetter, c cid.Cid, mode Mode) error {
	if mode == Direct {
		data, err := g.Get(ctx, c)
		if err != nil {
			return err
		}
		return dag.Verify(c, data)
	}
	return dag.Walk(ctx, g, c, dag.WalkOptions{VerifyLeaves: true}, func(cid.Cid) error { return nil })
}
