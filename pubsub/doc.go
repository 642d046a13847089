// Package pubsub is gossipsub v1.1 (/meshsub/1.1.0, the protocol kubo's
// `ipfs pubsub` speaks): peers that subscribe to a topic keep a mesh of a
// few others (D=6) over which full messages travel, and tell the rest of
// what they have seen (IHAVE) so that a lost message is asked for (IWANT).
// Every message is signed by its author (StrictSign: from, seqno,
// signature) and validated before it is forwarded; peers that send
// invalid messages or break the protocol (GRAFT during a backoff, broken
// IHAVE promises) are scored down, then ignored.
//
// The wire is package-local: rpc.go encodes and decodes the RPC protobuf,
// sign.go the message signatures, router.go keeps the meshes, score.go
// the peer scores, peer.go the one stream each way per peer. PubSub (in
// pubsub.go) is the API: Join a topic, Publish on it, Subscribe to it,
// RegisterValidator to judge its messages.
package pubsub
