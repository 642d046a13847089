// Package blockstore stores content-addressed blocks in a Pebble database and
// is the one owner of the database handle; other packages get a small
// metadata Keyspace from it.
//
// Blocks are keyed by multihash, so a raw and a dag-pb block with the same
// bytes are one entry. Large batches (the importer, network fetches) do not go
// through Pebble's write path: Batch writes the block bytes into an sstable of
// its own, keyed by a sequence number that only ever grows, ingests it (it
// lands straight in the bottom level, so there is no compaction debt), and
// only then writes the small multihash index with a synced Pebble batch. The
// index therefore never points at data that is not durable. Small batches and
// single Puts store the bytes inline in the index entry, and so does a large
// batch for its small dag-pb nodes (<= 16 KiB), which gc's mark reads for
// every pin: in index order, not one random sstable read each.
//
// Ingested blocks above 256 KiB are written in parts of 256 KiB, each its
// own key and so its own sstable block: Pebble copies and checksums a value
// in several passes, which a 1 MiB value makes from main memory and a
// 256 KiB one from the CPU's cache (half the CPU per byte). Readers get the
// parts with BorrowParts (the exchange sends them as they are) or copied
// together.
//
// Keys (the first byte is the keyspace):
//
//	'b' + multihash      -> index entry: 0x00 + bytes (inline)
//	                        or 0x01 + seq (8 bytes, big endian) + uvarint(size)
//	                        or 0x02 + seq + uvarint(size) + uvarint(part size)
//	'c'                  -> the block count: blocks, bytes (8 bytes each, big
//	                        endian), written in the batch of every index change
//	'd' + seq            -> block bytes of an ingested block (0x01), or its
//	                        first part (0x02)
//	'd' + seq + i        -> part i >= 1 (16 bits, big endian) of a block in parts
//	'j' + seq            -> journal: an sstable [seq, end) being ingested whose
//	                        index is not yet written (deleted at Open after a crash)
//
// The prefixes 'b' to 'j' are reserved for blocks; Keyspace panics on them.
// Other packages use e.g. 'p' (pins), 'r' (provider records), 'a' (peer
// addresses).
package blockstore
