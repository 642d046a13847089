package p2p

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
)

// Address TTLs.
const (
	// PermanentAddrTTL never expires (e.g. bootstrap peers).
	PermanentAddrTTL = time.Duration(math.MaxInt64)
	// ConnectedAddrTTL is used while connected; it becomes
	// RecentlyConnectedAddrTTL at disconnection.
	ConnectedAddrTTL = PermanentAddrTTL - 1
	// RecentlyConnectedAddrTTL keeps the addresses of a peer we were
	// connected to.
	RecentlyConnectedAddrTTL = 30 * time.Minute
	// TempAddrTTL is for addresses heard of but not tried.
	TempAddrTTL = 2 * time.Minute
	// ProviderAddrTTL is for addresses learnt with provider records.
	ProviderAddrTTL = 30 * time.Minute
)

// maxStoredAddrs bounds the addresses kept per peer.
const maxStoredAddrs = 64

// Peerstore is the host's address book: addresses per peer with expiry,
// and what identify told about each peer. Addresses with a lifetime of at
// least RecentlyConnectedAddrTTL are saved to the peerstore's KV, if any, when
// they change and restored at start.
type Peerstore struct {
	mu     sync.Mutex
	peers  map[peer.ID]*peerInfo
	store  share.KV
	notFnd func(error) bool
	log    *slog.Logger
	now    func() time.Time
}

type peerInfo struct {
	addrs     map[string]*addrEntry
	protocols []string
	agent     string
}

type addrEntry struct {
	addr    ma.Multiaddr
	expires time.Time // zero: never
	ttl     time.Duration
}

func newPeerstore(store share.KV, notFound func(error) bool, log *slog.Logger) (*Peerstore, error) {
	ps := &Peerstore{peers: map[peer.ID]*peerInfo{}, store: store, notFnd: notFound, log: log, now: time.Now}
	if notFound == nil {
		ps.notFnd = func(error) bool { return true }
	}
	if store != nil {
		if err := ps.load(); err != nil {
			return nil, fmt.Errorf("peerstore: load: %w", err)
		}
	}
	return ps, nil
}

// NewPeerstore returns a peerstore backed by store, a keyspace of its own
// (the repository's *blockstore.Keyspace fits; nil: memory only).
func NewPeerstore(store share.KV, isNotFound func(error) bool) (*Peerstore, error) {
	return newPeerstore(store, isNotFound, slog.New(slog.DiscardHandler))
}

func (ps *Peerstore) info(id peer.ID, create bool) *peerInfo {
	pi := ps.peers[id]
	if pi == nil && create {
		pi = &peerInfo{addrs: map[string]*addrEntry{}}
		ps.peers[id] = pi
	}
	return pi
}

func (ps *Peerstore) expiry(ttl time.Duration) time.Time {
	if ttl >= ConnectedAddrTTL {
		return time.Time{}
	}
	return ps.now().Add(ttl)
}

// AddAddrs adds addresses of a peer, extending (never shortening) the
// lifetime of those already known. /p2p suffixes are stripped.
func (ps *Peerstore) AddAddrs(id peer.ID, addrs []ma.Multiaddr, ttl time.Duration) {
	ps.update(id, addrs, ttl, false)
}

// SetAddrs sets the lifetime of the given addresses to ttl, shortening it
// if needed; a ttl <= 0 removes them.
func (ps *Peerstore) SetAddrs(id peer.ID, addrs []ma.Multiaddr, ttl time.Duration) {
	ps.update(id, addrs, ttl, true)
}

func (ps *Peerstore) update(id peer.ID, addrs []ma.Multiaddr, ttl time.Duration, set bool) {
	if id.Validate() != nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pi := ps.info(id, ttl > 0)
	if pi == nil {
		return
	}
	exp := ps.expiry(ttl)
	changed := false
	for _, a := range addrs {
		a, aid, err := peer.SplitAddr(a)
		if err != nil || len(a) == 0 || (aid != "" && aid != id) {
			continue
		}
		k := string(a.Bytes())
		e := pi.addrs[k]
		switch {
		case ttl <= 0:
			if e != nil {
				delete(pi.addrs, k)
				changed = true
			}
		case e == nil:
			if len(pi.addrs) >= maxStoredAddrs {
				continue
			}
			pi.addrs[k] = &addrEntry{addr: a, expires: exp, ttl: ttl}
			changed = true
		case set || e.later(exp):
			changed = changed || e.ttl != ttl
			e.expires, e.ttl = exp, ttl
		}
	}
	if changed {
		ps.persist(id, pi)
	}
}

// later reports whether exp is after e's expiry (zero means never).
func (e *addrEntry) later(exp time.Time) bool {
	if e.expires.IsZero() {
		return false
	}
	return exp.IsZero() || exp.After(e.expires)
}

// UpdateAddrs changes the lifetime of the addresses whose TTL is oldTTL.
func (ps *Peerstore) UpdateAddrs(id peer.ID, oldTTL, newTTL time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pi := ps.info(id, false)
	if pi == nil {
		return
	}
	exp := ps.expiry(newTTL)
	for k, e := range pi.addrs {
		if e.ttl != oldTTL {
			continue
		}
		if newTTL <= 0 {
			delete(pi.addrs, k)
			continue
		}
		e.ttl, e.expires = newTTL, exp
	}
	ps.persist(id, pi)
}

// Addrs returns the unexpired addresses of a peer.
func (ps *Peerstore) Addrs(id peer.ID) []ma.Multiaddr {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pi := ps.info(id, false)
	if pi == nil {
		return nil
	}
	now := ps.now()
	var out []ma.Multiaddr
	for k, e := range pi.addrs {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			delete(pi.addrs, k)
			continue
		}
		out = append(out, e.addr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}

// ClearAddrs forgets every address of a peer.
func (ps *Peerstore) ClearAddrs(id peer.ID) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if pi := ps.info(id, false); pi != nil {
		pi.addrs = map[string]*addrEntry{}
		ps.persist(id, pi)
	}
}

// PeerInfo returns the peer with its unexpired addresses.
func (ps *Peerstore) PeerInfo(id peer.ID) peer.AddrInfo {
	return peer.AddrInfo{ID: id, Addrs: ps.Addrs(id)}
}

// Peers returns every peer with unexpired addresses or identify data.
func (ps *Peerstore) Peers() []peer.ID {
	ps.mu.Lock()
	ids := make([]peer.ID, 0, len(ps.peers))
	for id := range ps.peers {
		ids = append(ids, id)
	}
	ps.mu.Unlock()
	out := ids[:0]
	for _, id := range ids {
		if len(ps.Addrs(id)) > 0 || len(ps.Protocols(id)) > 0 {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// SetProtocols records the protocols a peer announced.
func (ps *Peerstore) SetProtocols(id peer.ID, protos []string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.info(id, true).protocols = append([]string(nil), protos...)
}

// Protocols returns the protocols a peer announced.
func (ps *Peerstore) Protocols(id peer.ID) []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if pi := ps.info(id, false); pi != nil {
		return append([]string(nil), pi.protocols...)
	}
	return nil
}

// SupportsProtocol reports whether a peer announced proto.
func (ps *Peerstore) SupportsProtocol(id peer.ID, proto string) bool {
	for _, p := range ps.Protocols(id) {
		if p == proto {
			return true
		}
	}
	return false
}

// SetAgentVersion records the agent a peer announced.
func (ps *Peerstore) SetAgentVersion(id peer.ID, agent string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.info(id, true).agent = agent
}

// AgentVersion returns the agent a peer announced.
func (ps *Peerstore) AgentVersion(id peer.ID) string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if pi := ps.info(id, false); pi != nil {
		return pi.agent
	}
	return ""
}

// Persistence. Key: the peer ID bytes. Value: a version byte, then per
// address a uvarint length, the multiaddr bytes and the expiry as uvarint
// unix seconds (0 = never).

const storeVersion = 1

// persist saves the long-lived addresses of a peer; called with mu held.
// Failures are logged: the peerstore is a cache.
func (ps *Peerstore) persist(id peer.ID, pi *peerInfo) {
	if ps.store == nil {
		return
	}
	val := []byte{storeVersion}
	n := 0
	for _, e := range pi.addrs {
		if e.ttl < RecentlyConnectedAddrTTL {
			continue
		}
		exp := e.expires
		if e.ttl == ConnectedAddrTTL {
			exp = ps.now().Add(RecentlyConnectedAddrTTL)
		}
		val = binary.AppendUvarint(val, uint64(len(e.addr.Bytes())))
		val = append(val, e.addr.Bytes()...)
		var secs uint64
		if !exp.IsZero() {
			secs = uint64(exp.Unix())
		}
		val = binary.AppendUvarint(val, secs)
		n++
	}
	var err error
	if n == 0 {
		err = ps.store.Delete([]byte(id))
		if err != nil && ps.notFnd(err) {
			err = nil
		}
	} else {
		err = ps.store.Set([]byte(id), val)
	}
	if err != nil {
		ps.log.Debug("peerstore: save failed", "peer", id, "err", err)
	}
}

var errBadRecord = errors.New("bad peerstore record")

// DecodeAddrRecord decodes a stored record into addresses and expiries
// (zero = never).
func DecodeAddrRecord(val []byte) ([]ma.Multiaddr, []time.Time, error) {
	if len(val) == 0 || val[0] != storeVersion {
		return nil, nil, errBadRecord
	}
	val = val[1:]
	var addrs []ma.Multiaddr
	var exps []time.Time
	for len(val) > 0 {
		l, k := binary.Uvarint(val)
		if k <= 0 || l > uint64(len(val)-k) || l > 1024 {
			return nil, nil, errBadRecord
		}
		a, err := ma.NewMultiaddrBytes(val[k : k+int(l)])
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errBadRecord, err)
		}
		val = val[k+int(l):]
		secs, k := binary.Uvarint(val)
		if k <= 0 || secs > math.MaxInt64 {
			return nil, nil, errBadRecord
		}
		val = val[k:]
		var exp time.Time
		if secs != 0 {
			exp = time.Unix(int64(secs), 0)
		}
		addrs = append(addrs, a)
		exps = append(exps, exp)
	}
	return addrs, exps, nil
}

func (ps *Peerstore) load() error {
	now := ps.now()
	var bad [][]byte
	err := ps.store.Iterate(func(k, v []byte) error {
		id := peer.ID(k)
		addrs, exps, err := DecodeAddrRecord(v)
		if err != nil || id.Validate() != nil {
			bad = append(bad, append([]byte(nil), k...))
			return nil
		}
		pi := ps.info(id, true)
		for i, a := range addrs {
			if !exps[i].IsZero() && !now.Before(exps[i]) {
				continue
			}
			ttl := PermanentAddrTTL
			if !exps[i].IsZero() {
				ttl = RecentlyConnectedAddrTTL
			}
			pi.addrs[string(a.Bytes())] = &addrEntry{addr: a, expires: exps[i], ttl: ttl}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range bad {
		ps.log.Warn("peerstore: dropping bad record", "key", fmt.Sprintf("%x", k))
		ps.store.Delete(k)
	}
	return nil
}

// close saves the addresses of connected peers with their post-connection
// lifetime.
func (ps *Peerstore) close() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for id, pi := range ps.peers {
		for _, e := range pi.addrs {
			if e.ttl == ConnectedAddrTTL {
				ps.persist(id, pi)
				break
			}
		}
	}
	return nil
}
