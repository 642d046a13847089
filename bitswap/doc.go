// Package bitswap speaks Bitswap 1.2.0, 1.1.0 and 1.0.0 as kubo (boxo)
// does on the wire, so that kubo's nodes and ours exchange blocks on
// network "ipfs": the message codec, the per-peer streams, and a server
// that answers wantlists from a share.Getter.
//
// Bitswap replies travel on streams the answering side opens: a client
// sends its wantlist on a stream it opened and the server sends blocks and
// presences on a stream it opens back. A Bitswap therefore keeps one
// outbound stream per peer, used by both its client (Send) and its server,
// and reads every stream, inbound or outbound, the same way: wantlists go
// to the server, blocks and presences to the receiver the client set.
//
// The client side (a Bitswap peer as a block source of a fetch session)
// lives in package exchange, on top of Send and SetReceiver.
package bitswap
