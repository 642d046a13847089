// Package exchange moves blocks between peers: it serves blocks from the
// local store over the /<net>/blocks/1.0.0 protocol and fetches whole DAGs
// from many providers at once in sessions that verify every block against
// its CID before storing it.
//
// The package does not import the network host: it takes a
// share.StreamHost, which p2p.Host.Streams gives, so tests run on an
// in-memory network of fake hosts.
//
// # Wire format
//
// A client opens a long-lived stream per provider and per session and
// pipelines requests on it; once a fast provider has more than two
// transport windows (4 MiB) of requests outstanding, further requests go on
// further streams, up to Config.StreamsPerPeer (4), so that one stream's
// window does not leave the provider waiting for window updates. A CANCEL
// goes on the stream its WANT went on. The client writes WANT frames as its
// window allows,
// without waiting for answers, and the server answers each with a BLOCK or a
// DONT_HAVE frame, in request order, except that the requests behind a block
// that is slow to load (from a busy disk) are answered while it loads
// (clients accept any order: every answer names its CID). Every frame is
//
//	uvarint(n) | type (1 byte) | body (n-1 bytes)
//
// with 1 <= n <= MaxFrameSize; a peer that announces a larger frame, an
// unknown type or a malformed body is cut off (the stream is reset).
// Varints are minimal; CIDs are binary CIDs of at most 128 bytes (MaxCIDSize),
// blocks at most MaxBlockSize (4 MiB).
//
//	0x01 WANT_BLOCK  client -> server  body: CID          send me this block
//	0x02 WANT_HAVE   client -> server  body: CID          do you have it?
//	0x03 CANCEL      client -> server  body: CID          drop a queued WANT (endgame duplicates)
//	0x10 BLOCK       server -> client  body: uvarint(len(CID)) | CID | data   (data <= MaxBlockSize)
//	0x11 HAVE        server -> client  body: CID          answer to WANT_HAVE
//	0x12 DONT_HAVE   server -> client  body: CID          answer to WANT_BLOCK or WANT_HAVE
//
// A cancelled WANT gets no answer if the server drops it in time, else its
// BLOCK. A server answers only what was asked: a client cuts off a peer that
// sends a block it did not request or a block that does not hash to its CID
// (and reports it through Config.OnBadPeer).
//
// The server reads a peer's requests only while it has fewer than
// Config.MaxRequests of that peer's requests queued (over all its streams)
// and loads blocks only while fewer than Config.MaxBufferedBytes of them
// wait to be written, so a greedy client is throttled by flow control rather
// than served at the expense of others. Every read and write has a deadline:
// an idle server stream closes after Config.IdleTimeout, and a client that
// waits for answers gives a provider Config.ReadTimeout to send the next
// frame before it moves that provider's requests to others.
//
// # Sessions
//
// A Session fetches the DAG under one root: the root first, inner (dag-pb)
// nodes eagerly since they reveal the leaves, then leaves in DAG order from
// all providers in parallel. Each provider gets a window of requests in
// flight sized to its measured throughput (Config.MinWindow to
// Config.MaxWindow), so fast providers get more of the work; requests of a
// provider whose stream dies go back to the others, and once nothing is left
// to hand out, idle providers duplicate the oldest outstanding requests
// (endgame) and the losers are cancelled. Blocks already in the local store
// are not fetched, so an interrupted fetch resumes where it stopped.
//
// These decisions are made by package sched, a deterministic core with no
// goroutines, locks or clock of its own; a Session is its I/O shell: it
// runs the streams, frames, verifiers and the reader's Get, feeds the core
// events (a peer joins or dies, a block arrives, verifies or fails, a
// DONT_HAVE, a reader waits, a tick) and carries out what it decides
// (requests and CANCELs per peer and lane, peers to drop, the end).
package exchange
