package dag

import (
	"math/bits"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

// blake3Sum256 is blake3.Sum256 computed on the calling goroutine alone.
// The library hashes an input of more than one chunk with a goroutine per
// 16 KiB (64 for a 1 MiB block): fine for one big input, but our callers
// already hash many blocks in parallel (importer hashers, session
// verifiers), and on 2 cores the goroutine churn cost more than it gave.
// It walks the same tree the library's Hasher does: full 16-chunk groups
// through the SIMD compressor, the remaining chunks one by one, the last
// chunk kept for the root.
func blake3Sum256(b []byte) [32]byte {
	if len(b) <= guts.ChunkSize {
		return blake3.Sum256(b)
	}
	const (
		group       = guts.MaxSIMD * guts.ChunkSize
		groupHeight = 4 // log2(guts.MaxSIMD)
	)
	var stack [64][8]uint32
	var counter uint64 // chunks hashed; bit i set = a subtree of height i on the stack
	push := func(cv [8]uint32, height int) {
		i := height
		for counter&(1<<i) != 0 {
			cv = guts.ChainingValue(guts.ParentNode(stack[i], cv, &guts.IV, 0))
			i++
		}
		stack[i] = cv
		counter += 1 << height
	}
	last := (len(b) - 1) / guts.ChunkSize * guts.ChunkSize // the root's chunk starts here
	body, tail := b[:last], b[last:]
	for len(body) >= group {
		n := guts.CompressBuffer((*[group]byte)(body[:group]), group, &guts.IV, counter, 0)
		push(guts.ChainingValue(n), groupHeight)
		body = body[group:]
	}
	for len(body) > 0 {
		push(guts.ChainingValue(guts.CompressChunk(body[:guts.ChunkSize], &guts.IV, counter, 0)), 0)
		body = body[guts.ChunkSize:]
	}
	n := guts.CompressChunk(tail, &guts.IV, counter, 0)
	for i := bits.TrailingZeros64(counter); i < bits.Len64(counter); i++ {
		if counter&(1<<i) != 0 {
			n = guts.ParentNode(stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	var d [32]byte
	copy(d[:], out[:32])
	return d
}
