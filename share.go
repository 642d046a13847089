// Package share states the core types and interfaces of the system in one
// place, as a map for a newcomer: what a block is, how blocks are read and
// stored, the key-value store the small stores (pins, provider records,
// addresses) live in, and the stream host every network protocol runs on.
//
// Everything else implements or consumes these: the blockstore, the
// in-memory store of the tests, the fetcher's network-backed getter and
// every wrapper are Getters (one conformance suite, package storetest, runs
// them all); the DAG reader, the gateway, pins and gc take a Getter and do
// not care where blocks come from. Errors carry a kind (package errs) that
// every surface maps to what it shows: the CLI's line and exit status, the
// daemon API's JSON, the gateway's HTTP status.
//
// The network protocols take a StreamHost (the block exchange) or a
// RoutingHost (the DHT), never the concrete host: p2p.Host.Streams gives
// one, the exchange's tests fake one, and node tests run whole hosts on
// the in-memory transport of package p2p/mocknet.
package share

import (
	"context"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p/peer"
)

// Block is a block's bytes as a Getter returns them.
type Block struct {
	// Data is the block's bytes. The caller does not modify it, and does
	// not use it after Release.
	Data []byte
	// Verified says Data was checked against the block's CID in this
	// process (a network fetch hashes every block as it arrives), so a
	// reader need not hash it again. Blocks read from storage are never
	// verified: the disk may have rotted.
	Verified bool

	release func([]byte)
}

// NewBlock returns a block of data. release, if not nil, is called with
// data by Release, to recycle its buffer.
func NewBlock(data []byte, verified bool, release func([]byte)) Block {
	return Block{Data: data, Verified: verified, release: release}
}

// Release hands the block's buffer back to its getter: the caller holds no
// reference to Data any more, which may hold another block's bytes after
// it. Calling it is optional (an unreleased buffer is garbage collected)
// and it may be called once; the zero Block releases nothing.
func (b Block) Release() {
	if b.release != nil {
		b.release(b.Data)
	}
}

// Getter reads blocks. It is the one interface every block source and
// wrapper implements; there are no optional ones, and a wrapper passes its
// getter's blocks on as they are, Verified and release included. Package
// storetest checks an implementation against this contract.
type Getter interface {
	// Get returns the block c. A missing block is an error of kind
	// errs.NotFound. Each call returns a block of its own: releasing one
	// never changes another that is still held, even of the same CID.
	Get(ctx context.Context, c cid.Cid) (Block, error)
	// Has reports whether the block c can be read without waiting for the
	// network (walks use it to check leaves without reading them).
	Has(ctx context.Context, c cid.Cid) (bool, error)
}

// Putter stores blocks.
type Putter interface {
	// Put stores data under c. The caller may reuse data once Put returns,
	// so an implementation that keeps it must copy it.
	Put(ctx context.Context, c cid.Cid, data []byte) error
}

// KV is a small persistent key-value store: one keyspace of the repository
// (pins, provider records, peer addresses). A missing key is an error of
// kind errs.NotFound.
type KV interface {
	Get(key []byte) ([]byte, error)
	Set(key, val []byte) error
	Delete(key []byte) error
	// Iterate calls fn for every key in order until fn returns an error,
	// which Iterate returns. fn must not keep key or val.
	Iterate(fn func(key, val []byte) error) error
}

// Stream is a bidirectional byte stream to a peer, speaking one protocol:
// what a network protocol reads and writes (p2p's streams implement it,
// tests' in-memory ones too). Every read of remote bytes should have a
// deadline.
type Stream interface {
	io.Reader
	io.Writer
	// Close closes both directions gracefully.
	Close() error
	// CloseWrite ends the writing half: the peer reads EOF.
	CloseWrite() error
	// Reset aborts the stream in both directions.
	Reset() error
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	// RemotePeer is the peer at the other end.
	RemotePeer() peer.ID
}

// StreamHost opens streams to peers and dispatches the streams they open:
// all a block exchange needs of the network.
type StreamHost interface {
	// NewStream opens a stream to p speaking proto, dialling if needed.
	NewStream(ctx context.Context, p peer.ID, proto string) (Stream, error)
	// SetHandler calls h in its own goroutine for each inbound stream of
	// proto, replacing any handler of proto. The stream belongs to h,
	// which closes or resets it.
	SetHandler(proto string, h func(Stream))
	// RemoveHandler stops serving proto: peers that propose it are
	// refused.
	RemoveHandler(proto string)
}

// RoutingHost is a StreamHost that also says what it knows of peers: what
// a routing protocol (the DHT) needs to fill its table and dial the peers
// it learns of.
type RoutingHost interface {
	StreamHost
	// Connected reports whether the host has a connection to p.
	Connected(p peer.ID) bool
	// Addrs returns the addresses known for p.
	Addrs(p peer.ID) []ma.Multiaddr
	// AddTempAddrs records addresses heard of for p, for a dial about
	// to happen; they expire within minutes (identify records the ones
	// p announces once connected).
	AddTempAddrs(p peer.ID, addrs []ma.Multiaddr)
	// SupportsProtocol reports whether identify says p serves proto.
	SupportsProtocol(p peer.ID, proto string) bool
	// WatchProtocol calls fn with every peer that identify finds serving
	// proto, from then on, one call at a time, until stop is called;
	// stop waits for a call under way.
	WatchProtocol(proto string, fn func(peer.AddrInfo)) (stop func())
}
