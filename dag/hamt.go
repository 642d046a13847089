package dag

// HAMT-sharded directories, as the UnixFS spec describes them and kubo writes
// them. A directory too large for one reasonable block is split over a tree
// of HAMTShard nodes: each name is hashed (the first 64 bits of
// murmur3-x64-128, big endian), each level of the tree consumes log2(fanout)
// bits of that hash from the top, and a node holds, in slot order, one link
// per occupied slot:
//
//   - "%02X" + name: the entry itself (its CID and Tsize);
//   - "%02X" alone: a child shard holding the entries whose hashes share the
//     slot (two or more).
//
// The node's UnixFS Data is Type HAMTShard, Data = the occupied slots as a
// big-endian bitfield with leading zero bytes dropped, HashType 0x22
// (murmur3), Fanout.

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/spaolacci/murmur3"

	"github.com/share-p2p/share"
)

const (
	// ShardThreshold is kubo's default HAMT threshold: a directory is
	// written sharded when the sum, over its entries, of the name's length
	// plus the CID's length in bytes exceeds it (about 5000 entries with
	// short names). Below it a plain Directory node is written, so the
	// reference CIDs of small directories do not change.
	ShardThreshold = 256 << 10
	// ShardFanout is the fanout of the shards this package writes.
	ShardFanout = 256
	// HashMurmur3 is the multicodec of the HAMT hash function (murmur3-x64-64).
	HashMurmur3 = 0x22
	// maxShardFanout is the largest fanout readers accept (kubo's limit).
	maxShardFanout = 1024
)

// needsShard reports whether a directory with these links is written as a
// HAMT (kubo's "links" size estimate, strictly above the threshold).
func needsShard(links []PBLink) bool {
	size := 0
	for _, l := range links {
		size += len(l.Name) + l.Hash.ByteLen()
		if size > ShardThreshold {
			return true
		}
	}
	return false
}

// hamtHash is the 64-bit hash a HAMT places name by.
func hamtHash(name string) uint64 {
	h1, _ := murmur3.Sum128([]byte(name))
	return h1
}

// slot is the index of hash at depth in a shard of 2^bits slots.
func slot(hash uint64, depth, bits int) int {
	return int(hash >> (64 - (depth+1)*bits) & (1<<bits - 1))
}

type hamtEntry struct {
	link PBLink
	hash uint64
}

// hamt stores the HAMT for a directory with these links and returns its
// root shard.
func (im *importer) hamt(ctx context.Context, links []PBLink, meta fileMeta) (entry, error) {
	ents := make([]hamtEntry, len(links))
	for i, l := range links {
		ents[i] = hamtEntry{link: l, hash: hamtHash(l.Name)}
	}
	return im.shard(ctx, ents, 0, meta)
}

// shard stores the shard at depth holding ents (which it reorders); meta
// goes into the root shard alone.
func (im *importer) shard(ctx context.Context, ents []hamtEntry, depth int, meta fileMeta) (entry, error) {
	const b = 8 // bits per level: log2(ShardFanout)
	if (depth+1)*b > 64 {
		return entry{}, fmt.Errorf("sharded directory: %d names share one 64-bit hash", len(ents))
	}
	if err := ctx.Err(); err != nil {
		return entry{}, err
	}
	slices.SortFunc(ents, func(x, y hamtEntry) int { return slot(x.hash, depth, b) - slot(y.hash, depth, b) })
	var bitfield [ShardFanout / 8]byte
	links := make([]PBLink, 0, min(len(ents), ShardFanout))
	var tsize uint64
	for i := 0; i < len(ents); {
		s := slot(ents[i].hash, depth, b)
		j := i + 1
		for j < len(ents) && slot(ents[j].hash, depth, b) == s {
			j++
		}
		bitfield[len(bitfield)-1-s/8] |= 1 << (s % 8)
		prefix := fmt.Sprintf("%02X", s)
		if j-i == 1 {
			l := ents[i].link
			links = append(links, PBLink{Hash: l.Hash, Name: prefix + l.Name, Tsize: l.Tsize})
			tsize += l.Tsize
		} else {
			child, err := im.shard(ctx, ents[i:j], depth+1, fileMeta{})
			if err != nil {
				return entry{}, err
			}
			links = append(links, PBLink{Hash: child.c, Name: prefix, Tsize: child.tsize})
			tsize += child.tsize
		}
		i = j
	}
	bf := bitfield[:]
	for len(bf) > 0 && bf[0] == 0 {
		bf = bf[1:]
	}
	fs := UnixFS{Type: TypeHAMTShard, Data: bf, HashType: HashMurmur3, HasHashType: true, Fanout: ShardFanout, HasFanout: true}
	meta.set(&fs)
	return im.node(ctx, &PBNode{Links: links, Data: fs.Marshal()}, tsize)
}

// shardNode is one decoded, checked HAMT shard.
type shardNode struct {
	entries []PBLink  // entries held here, names without their prefix
	subs    []cid.Cid // child shards, in slot order
	slots   []int     // slot of each link of the node
	pad     int       // length of the hex slot prefix
	bits    int       // bits of the hash per level
}

// decodeShard checks the HAMT shard c (pn, fs) found at depth and splits
// its links into entries and child shards. Anything inconsistent (hash
// function, fanout, bitfield, link names, depth beyond the hash's 64 bits)
// is an error: the shard comes from a peer.
func decodeShard(c cid.Cid, pn *PBNode, fs *UnixFS, depth int) (*shardNode, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("block %s: %w: HAMT shard: %s", c, ErrInvalidNode, fmt.Sprintf(format, args...))
	}
	if !fs.HasHashType || fs.HashType != HashMurmur3 {
		return nil, fmt.Errorf("block %s: %w: HAMT hash function %#x", c, ErrUnsupported, fs.HashType)
	}
	if !fs.HasFanout || fs.Fanout < 8 || fs.Fanout > maxShardFanout || fs.Fanout&(fs.Fanout-1) != 0 {
		return nil, bad("fanout %d", fs.Fanout)
	}
	fanout := int(fs.Fanout)
	sn := &shardNode{bits: bits.TrailingZeros(uint(fanout)), pad: len(strconv.FormatInt(int64(fanout-1), 16))}
	if (depth+1)*sn.bits > 64 {
		return nil, bad("deeper than the hash")
	}
	if len(fs.Data) > fanout/8 {
		return nil, bad("bitfield of %d bytes for fanout %d", len(fs.Data), fanout)
	}
	var occupied [maxShardFanout / 8]byte
	copy(occupied[fanout/8-len(fs.Data):fanout/8], fs.Data)
	set := func(s int) bool { return occupied[fanout/8-1-s/8]&(1<<(s%8)) != 0 }
	n := 0
	for _, x := range fs.Data {
		n += bits.OnesCount8(x)
	}
	if n != len(pn.Links) {
		return nil, bad("%d slots set for %d links", n, len(pn.Links))
	}
	last := -1
	for _, l := range pn.Links {
		if len(l.Name) < sn.pad {
			return nil, bad("link name %q", l.Name)
		}
		s64, err := strconv.ParseUint(l.Name[:sn.pad], 16, 16)
		s := int(s64)
		if err != nil || s >= fanout || s <= last || !set(s) {
			return nil, bad("link name %q", l.Name)
		}
		last = s
		sn.slots = append(sn.slots, s)
		if len(l.Name) == sn.pad {
			if l.Hash.Type() != DagPB {
				return nil, bad("child shard %s is not dag-pb", l.Hash)
			}
			sn.subs = append(sn.subs, l.Hash)
			continue
		}
		name := l.Name[sn.pad:]
		if !validName(name) {
			return nil, fmt.Errorf("block %s: %w: entry name %q", c, ErrInvalidNode, name)
		}
		sn.entries = append(sn.entries, PBLink{Hash: l.Hash, Name: name, Tsize: l.Tsize})
	}
	return sn, nil
}

// loadShard fetches c and decodes it as a HAMT shard at depth.
func loadShard(ctx context.Context, g share.Getter, c cid.Cid, depth int) (*shardNode, error) {
	pn, fs, err := fetchUnixFS(ctx, g, c)
	if err != nil {
		return nil, err
	}
	if fs.Type != TypeHAMTShard {
		return nil, fmt.Errorf("block %s: %w: HAMT shard: a %s among the shards", c, ErrInvalidNode, fs.Type)
	}
	return decodeShard(c, pn, fs, depth)
}

// shardLinks returns every entry of the sharded directory whose root shard
// is c (pn, fs), sorted by name. The child shards of each level are fetched
// in parallel (readAhead at a time), so a directory fetched over the network
// costs one round trip per level, not per shard.
func shardLinks(ctx context.Context, g share.Getter, c cid.Cid, pn *PBNode, fs *UnixFS) ([]PBLink, error) {
	root, err := decodeShard(c, pn, fs, 0)
	if err != nil {
		return nil, err
	}
	links := root.entries
	level := root.subs
	for depth := 1; len(level) > 0; depth++ {
		nodes := make([]*shardNode, len(level))
		errs := make([]error, len(level))
		sem := make(chan struct{}, readAhead)
		var wg sync.WaitGroup
		for i, sc := range level {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				nodes[i], errs[i] = loadShard(ctx, g, sc, depth)
			}()
		}
		wg.Wait()
		level = nil
		for i, sn := range nodes {
			if errs[i] != nil {
				return nil, errs[i]
			}
			links = append(links, sn.entries...)
			level = append(level, sn.subs...)
		}
	}
	slices.SortFunc(links, func(a, b PBLink) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(links); i++ {
		if links[i].Name == links[i-1].Name {
			return nil, fmt.Errorf("block %s: %w: HAMT shard: name %q twice", c, ErrInvalidNode, links[i].Name)
		}
	}
	return links, nil
}

// shardLookup finds name in the sharded directory whose root shard is c
// (pn, fs): it follows the name's hash down, one shard per level.
func shardLookup(ctx context.Context, g share.Getter, c cid.Cid, pn *PBNode, fs *UnixFS, name string) (PBLink, error) {
	sn, err := decodeShard(c, pn, fs, 0)
	if err != nil {
		return PBLink{}, err
	}
	h := hamtHash(name)
	for depth := 0; ; depth++ {
		want := slot(h, depth, sn.bits)
		i, found := slices.BinarySearch(sn.slots, want)
		if !found {
			return PBLink{}, ErrNoLink
		}
		l := pn.Links[i]
		if len(l.Name) > sn.pad {
			if l.Name[sn.pad:] == name {
				return PBLink{Hash: l.Hash, Name: name, Tsize: l.Tsize}, nil
			}
			return PBLink{}, ErrNoLink
		}
		// A child shard: go down one level.
		sc := l.Hash
		b, err := fetch(ctx, g, sc)
		if err != nil {
			return PBLink{}, err
		}
		if pn, fs, err = decodeUnixFSNode(sc, b.Data); err != nil {
			return PBLink{}, err
		}
		if fs.Type != TypeHAMTShard {
			return PBLink{}, fmt.Errorf("block %s: %w: HAMT shard: a %s among the shards", sc, ErrInvalidNode, fs.Type)
		}
		if sn, err = decodeShard(sc, pn, fs, depth+1); err != nil {
			return PBLink{}, err
		}
	}
}
