// Package autonat is AutoNAT v2 (libp2p/specs autonat/autonat-v2.md): a
// node asks peers to dial it back at one of its addresses, and learns
// from their answers which of its addresses the internet can reach and
// so whether it is reachable at all.
//
// The Server answers /libp2p/autonat/2/dial-request: it picks the first
// public address of a request it can dial, asks for dial data first when
// that address's IP is not the one the client connects from (so that
// nobody can use it to send handshakes to a victim for free), dials it
// from a host of its own (another identity, an ephemeral port, so that
// the dial never rides on the client's connection nor punches a hole),
// and sends the client's nonce on /libp2p/autonat/2/dial-back. Requests
// are rate limited per peer and overall.
//
// The Client tests its candidate addresses (public listen addresses,
// observed addresses that enough peers confirm, and the one each server
// itself observed) at several servers, believes a dial back only when
// the nonce arrives, and concludes: an address is reachable or not when
// Confirmations servers agree and the others are fewer. One server that
// lies changes nothing.
//
// On network "ipfs" the protocol IDs are libp2p's, so kubo's servers and
// clients are ours; on other networks they carry the network name, as
// every share protocol does.
package autonat
