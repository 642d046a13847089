// Package relay is circuit relay v2 (libp2p specs relay/circuit-v2.md):
// a relay lets a peer that cannot be dialled (behind a NAT) be reached
// through a public one, which splices two streams into a circuit.
//
// A Service answers /libp2p/circuit/relay/0.2.0/hop on a public node: it
// grants reservations (signed vouchers, payload type /libp2p/relay-rsvp)
// and connects circuits to the peers holding them, within limits on
// reservations, circuits, and each circuit's duration and bytes. A Client
// keeps reservations on relays, renews them before they expire, answers
// /libp2p/circuit/relay/0.2.0/stop, and dials /p2p/RELAY/p2p-circuit
// addresses for the host; the host runs its normal upgrade (TLS 1.3,
// yamux) over the relayed stream, so a circuit is a p2p.Conn like any
// other, whose remote address ends in /p2p-circuit.
package relay
