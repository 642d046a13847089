package blockstore

import (
	"math/bits"
	"sync"
	"unsafe"
)

// The size classes of the buffers Get copies blocks into: powers of two
// from 4 KiB to 4 MiB. Smaller blocks (inner nodes) get a buffer of their
// size, cheap to allocate and not worth keeping; larger ones are rare (a
// default chunk is 1 MiB) and not kept either.
const (
	minPooledShift = 12 // 4 KiB
	maxPooledShift = 22 // 4 MiB
	numClasses     = maxPooledShift - minPooledShift + 1
)

// bufPool recycles the buffers of the blocks Get returns: a reader that
// releases each block once it has used it (the DAG reader streaming a file)
// reads without allocating a buffer per block.
type bufPool struct {
	// Each class holds the first byte of its free buffers: a pointer fits
	// an interface without an allocation, where a slice would not, and it
	// keeps the whole buffer alive.
	classes [numClasses]sync.Pool
}

// class returns the size class of a buffer for n bytes, or -1 if such a
// buffer is not pooled.
func class(n int) int {
	if n < 1<<minPooledShift || n > 1<<maxPooledShift {
		return -1
	}
	return bits.Len(uint(n-1)) - minPooledShift
}

// get returns an empty buffer with room for n bytes.
func (p *bufPool) get(n int) []byte {
	cl := class(n)
	if cl < 0 {
		return make([]byte, 0, n)
	}
	if b, ok := p.classes[cl].Get().(*byte); ok {
		return unsafe.Slice(b, 1<<(cl+minPooledShift))[:0]
	}
	return make([]byte, 0, 1<<(cl+minPooledShift))
}

// put takes back a buffer that get returned; others are left to the
// garbage collector.
func (p *bufPool) put(b []byte) {
	c := cap(b)
	cl := class(c)
	if cl < 0 || c != 1<<(cl+minPooledShift) {
		return
	}
	p.classes[cl].Put(unsafe.SliceData(b[:1]))
}
