// Package ipns is share's IPNS records: mutable names that point at
// content, in the format of the IPNS spec that kubo reads and writes. A
// name is the PeerID of an ed25519 key; its record says, signed by that
// key, which path the name points at, until when, and with which sequence
// number (a higher one replaces a lower one). The DHT stores records
// under RoutingKey and checks them with Validator; the node publishes,
// resolves and republishes them.
//
// The record is a protobuf (IpnsEntry) around a small DAG-CBOR map that
// the V2 signature covers; this package writes and reads both with
// hand-written codecs for exactly those fields, so it needs no CBOR or
// IPLD library.
package ipns
