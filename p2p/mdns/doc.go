// Package mdns finds peers of the same network on the local link with
// multicast DNS service discovery (RFC 6762, RFC 6763), the third step of
// "Finding content" in DESIGN.md.
//
// Each Service announces its node as one DNS-SD instance and browses for the
// others; every peer found is handed to Config.OnPeer, deduplicated and never
// the node itself. The mDNS machinery is github.com/pion/mdns/v2: besides
// A/AAAA names it registers DNS-SD instances (PTR, SRV and TXT records),
// answers PTR questions at once with SRV, TXT and address records in the same
// packet, and browses with PTR questions. That is everything discovery of
// unknown peers needs (the PTR question for the service type is the
// well-known query every peer answers), so this package writes no packets of
// its own. It only adds what pion leaves to the caller: the sockets, the
// query schedule with backoff, the record format, validation of what peers
// announce, deduplication and limits.
//
// # Records on the wire
//
// For network N, node ID and TCP port P:
//
//	_share-HHHHHHHH._udp.local.         PTR  ID._share-HHHHHHHH._udp.local.
//	ID._share-HHHHHHHH._udp.local.      SRV  0 0 P share-XXXXXXXXXXXXXXXX.local.
//	ID._share-HHHHHHHH._udp.local.      TXT  "net=N" "addr0=/ip4/192.0.2.7/tcp/4001/p2p/ID" "addr1=..."
//	share-XXXXXXXXXXXXXXXX.local.       A    address of the interface the question came in on
//
// HHHHHHHH is the first 8 characters of the lowercase base32 SHA-256 of the
// network name: a DNS-SD service name has at most 15 characters, too few
// for network names of up to 64, so the name is hashed into the service type
// (peers of other networks neither answer nor are asked) and repeated in the
// "net" key, which must match exactly. ID is the base58 PeerID and
// XXXXXXXXXXXXXXXX a hash of it (host names are case-insensitive, PeerIDs are
// not). The "addrN" keys (DNS-SD keys must be unique, so libp2p's repeated
// "dnsaddr" key is numbered here) list up to 8 specific listen addresses in
// the dial form /ip4|ip6/.../tcp/N/p2p/ID; listen addresses on the
// unspecified address (0.0.0.0, ::) are not listed but give the SRV port, so
// a receiver also dials the A/AAAA address with the SRV port, which is the
// announcer's address on the link the answer came from.
//
// # libp2p's format (network ipfs)
//
// With Config.Format FormatLibp2p a Service speaks libp2p's mDNS
// (libp2p/specs discovery/mdns.md) as kubo does, so that kubo and share
// find each other on a LAN with no configuration:
//
//	_p2p._udp.local.                    PTR  RANDOM._p2p._udp.local.
//	RANDOM._p2p._udp.local.             SRV  0 0 P RANDOM2.local.
//	RANDOM._p2p._udp.local.             TXT  "dnsaddr=/ip4/192.0.2.7/tcp/4001/p2p/ID" "dnsaddr=..."
//	RANDOM2.local.                      A    addresses of the interface the question came in on
//
// RANDOM and RANDOM2 are random labels of 32 to 63 letters and digits
// drawn at New, as the spec asks (they say nothing of the node). The PTR
// is the answer, the others are additional records; the TTLs are kubo's
// (3200 s, A/AAAA 120 s). libp2p reads only the TXT strings, but
// zeroconf, kubo's mDNS library, reports an instance only when the same
// packet has an address record for its SRV target, hence the A records.
// Kubo's SRV port is always 4001 whatever it listens on, so the receiver
// reads only the dnsaddr strings: /ip4|ip6/A/tcp/P/p2p/ID, of one peer per
// instance. The format repeats the "dnsaddr" key, which pion neither sends
// nor reads (its TXT keys are unique), so this format runs on sockets of
// its own (libp2pConn): it answers PTR questions for the service
// (multicast, or unicast to a QU question or a legacy resolver) and reads
// every response and announcement it hears, whatever section their
// records are in. testdata/kubo holds kubo 0.43's packets.
//
// # Timing
//
// A Service answers questions from New on, and Start sends a PTR question at
// once, then after 1 s, 2 s, 4 s, ... up to 60 s. A new node therefore finds
// the existing ones within one round trip (about 2 ms on loopback and on the
// lab LAN); existing nodes hear of it at their next query, and in any case
// through the connection the new node opens to them.
//
// # Validation
//
// pion drops packets that do not parse and reads at most one MTU (never more
// than 9000 bytes) per packet. Of each instance this package accepts only a
// valid PeerID as instance name, the exact network name, at most 32 TXT
// strings, and addresses made of exactly /ip4 or /ip6, /tcp with a non-zero
// port and optionally /p2p with the announced ID; unspecified, multicast,
// broadcast and IPv6 link-local addresses are dropped, loopback ones unless
// Config.IncludeLoopback. It keeps at most 16 addresses per peer and 1024
// peers, and drops events when OnPeer falls behind. In libp2p's format a
// packet is read only up to 9000 bytes and 64 records, 16 instances and
// 64 TXT strings per instance; the address rules are the same.
package mdns
