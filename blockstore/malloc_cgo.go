//go:build linux && cgo

package blockstore

// #include <malloc.h>
//
// static void tuneMalloc(void) {
// #ifdef M_MMAP_THRESHOLD
// 	mallopt(M_MMAP_THRESHOLD, 8 << 20);
// 	mallopt(M_TRIM_THRESHOLD, 64 << 20);
// 	mallopt(M_ARENA_MAX, 4);
// #endif
// }
import "C"

// Pebble's block cache allocates every block it reads with C calloc. Our
// blocks are up to 4 MiB, above glibc's default mmap threshold, so each read
// of a leaf cost an mmap, 256 page faults to zero it and an munmap: a
// provider serving 1 GiB spent 1.5 of its 3.4 CPU-seconds there. Raising the
// threshold makes those buffers come from (and return to) malloc's heap,
// where they are reused; the trim threshold keeps glibc from handing the
// heap back to the kernel after every block. The cache itself stays bounded
// by Options.CacheSize.
func init() { C.tuneMalloc() }
