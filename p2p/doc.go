// Package p2p is the host: the node's identity, its listeners and
// connections, and the streams that the protocols above run on.
//
// A connection is built in layers, each from a libp2p spec: a raw byte
// stream from a Transport (TCP, or an in-memory network in tests), an
// optional private-network wrapper, TLS 1.3 negotiated with
// multistream-select as /tls/1.0.0 (package sec), then yamux negotiated as
// /yamux/1.0.0 inside TLS. Every stream negotiates its protocol with
// multistream-select (package mss), optimistically when one protocol is
// proposed, so that opening a stream costs no round trip.
//
// The host keeps one connection per peer (simultaneous dials collapse to
// the one dialled by the smaller PeerID), enforces limits on connections and
// streams, trims idle connections between watermarks, runs identify on every
// new connection, answers ping, and tells subscribers when peers come and go.
// Addresses learnt about peers live in the Peerstore.
package p2p
