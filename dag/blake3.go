package dag

import (
	"crypto/subtle"
	"fmt"
	"math/bits"

	"github.com/ipfs/go-cid"
	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

// blake3Sum256 is blake3.Sum256 computed on the calling goroutine alone.
// The library hashes an input of more than one chunk with a goroutine per
// 16 KiB (64 for a 1 MiB block): fine for one big input, but our callers
// already hash many blocks in parallel (importer hashers, session
// verifiers), and on 2 cores the goroutine churn cost more than it gave.
func blake3Sum256(b []byte) [32]byte {
	var t tree
	return t.sum(b)
}

const (
	group       = guts.MaxSIMD * guts.ChunkSize // compressed at once by SIMD
	groupHeight = 4                             // log2(guts.MaxSIMD)
)

// tree walks the BLAKE3 tree the library's Hasher does: full 16-chunk
// groups through the SIMD compressor, the remaining chunks one by one, the
// last chunk kept for the root. It can start on a prefix of the input
// (advance) and finish later (sum).
type tree struct {
	stack   [54][8]uint32
	counter uint64 // chunks hashed; bit i set = a subtree of height i on the stack
	done    int    // bytes hashed, a multiple of group
}

func (t *tree) push(cv [8]uint32, height int) {
	i := height
	for t.counter&(1<<i) != 0 {
		cv = guts.ChainingValue(guts.ParentNode(t.stack[i], cv, &guts.IV, 0))
		i++
	}
	t.stack[i] = cv
	t.counter += 1 << height
}

// advance hashes the whole groups of b (the input so far) that cannot hold
// the root's chunk: at least one byte must follow them.
func (t *tree) advance(b []byte) {
	for t.done+group < len(b) {
		n := guts.CompressBuffer((*[group]byte)(b[t.done:t.done+group]), group, &guts.IV, t.counter, 0)
		t.push(guts.ChainingValue(n), groupHeight)
		t.done += group
	}
}

// sum returns the hash of b, of which the first t.done bytes were hashed
// by advance.
func (t *tree) sum(b []byte) [32]byte {
	if len(b) <= guts.ChunkSize {
		return blake3.Sum256(b)
	}
	last := (len(b) - 1) / guts.ChunkSize * guts.ChunkSize // the root's chunk starts here
	t.advance(b[:last+1])
	body, tail := b[t.done:last], b[last:]
	for len(body) > 0 {
		t.push(guts.ChainingValue(guts.CompressChunk(body[:guts.ChunkSize], &guts.IV, t.counter, 0)), 0)
		body = body[guts.ChunkSize:]
	}
	n := guts.CompressChunk(tail, &guts.IV, t.counter, 0)
	for i := bits.TrailingZeros64(t.counter); i < bits.Len64(t.counter); i++ {
		if t.counter&(1<<i) != 0 {
			n = guts.ParentNode(t.stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	var d [32]byte
	copy(d[:], out[:32])
	return d
}

// BlockHasher hashes a block while it arrives into one buffer, so that each
// piece is hashed while it is still in the CPU's cache (measured here:
// BLAKE3 of data just copied runs at 3.8 GB/s, of data gone cold at 2.2).
// Feed it the growing buffer with Advance, then Verify the whole block.
// The zero value is ready to use.
type BlockHasher struct{ t tree }

// Advance hashes what it can of b, the block's bytes received so far
// (always the same buffer, growing).
func (h *BlockHasher) Advance(b []byte) { h.t.advance(b) }

// Verify checks that data, the whole block whose prefixes went through
// Advance, hashes to c, as Verify does. A CID of another hash function is
// checked from scratch.
func (h *BlockHasher) Verify(c cid.Cid, data []byte) error {
	hash := c.Hash()
	if len(hash) != 34 || hash[0] != byte(hashBLAKE3) || hash[1] != 32 {
		return Verify(c, data)
	}
	d := h.t.sum(data)
	if subtle.ConstantTimeCompare(d[:], hash[2:]) != 1 {
		return fmt.Errorf("block %s: %w", c, ErrHashMismatch)
	}
	return nil
}
