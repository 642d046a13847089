// Package dcutr is Direct Connection Upgrade through Relay (libp2p specs
// relay/DCUtR.md, protocol /libp2p/dcutr): two peers joined by a relayed
// connection exchange their public addresses over it, time their dials by
// its round trip, and open TCP to each other at the same moment, so that
// each one's NAT sees the other's SYN as the answer to its own (a TCP
// simultaneous open) and a direct connection replaces the relayed one.
//
// The peer that accepted the relayed connection (the unreachable one, B in
// the spec) initiates: it sends CONNECT with its addresses, measures the
// round trip to the answering CONNECT, sends SYNC and dials half a round
// trip later; the other (A) dials as soon as SYNC arrives. Both dial from
// their listen port (p2p.TCP.ReusePort), whose NAT mapping the addresses
// name. B takes the listener's part of the handshake, A the dialler's
// (B swaps on the last of its three attempts, as go-libp2p does, for
// peers that assign the roles the other way). When no hole can be
// punched (a symmetric NAT) the relayed connection stays.
package dcutr
