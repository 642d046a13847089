// Package dht is share's Kademlia DHT: a routing table of 256 buckets of
// K=20 peers over the SHA-256 of peer IDs and content keys, iterative
// lookups with Alpha requests in flight that end when the K closest peers
// seen have all answered, and the RPCs of libp2p's kad-dht (FIND_NODE,
// GET_PROVIDERS, ADD_PROVIDER, PUT_VALUE, GET_VALUE, PING) with its
// message shapes, on /<network>/kad/1.0.0. Values (IPNS records, in the
// "/ipns/" namespace) are checked by their namespace's Validator before
// a ValueStore keeps or a lookup believes them.
//
// Messages travel over a Network: HostNetwork runs them on the streams of
// a share.RoutingHost (p2p.Host.Streams), dhttest.Network in memory for
// simulations of thousands of nodes, with injectable faults.
//
// Server and client mode. A server registers its handler with the
// transport (so identify lists the kad protocol); a client registers
// nothing, so it can be neither queried nor advertised. A peer enters a
// routing table only when it is known to serve: it answered one of our
// requests, or it sent us a request while serving itself (identify lists
// the kad protocol; in memory: it has a handler), or Attach saw identify
// list the protocol. Peers merely named in answers are lookup candidates,
// never table entries. Mode auto resolves at New: server when Self has
// sane listen addresses (ip4/ip6 + tcp, not unspecified), client when the
// node only dials.
//
// Liveness: a peer that fails MaxFailures requests in a row leaves the
// table and the most recent peer of its bucket's replacement cache takes
// its place; the maintenance loop pings peers not heard from in a
// RefreshInterval and refreshes the buckets with random lookups.
package dht

// Wiring in a node (sketch):
//
//	store, _ := provide.NewStore(provide.StoreConfig{KV: bs.Keyspace('P')})
//	go store.RunExpiry(ctx, time.Hour)
//	proto := dht.Protocol(h.Network())
//	d, _ := dht.New(dht.Config{Self: h.AddrInfo, Mode: mode,
//		Transport: dht.NewHostNetwork(h.Streams(), proto), Store: store})
//	d.Attach(h.Streams(), proto)
//	d.Bootstrap(ctx, bootstrapPeers) // and after mDNS finds peers
//	p, _ := provide.New(provide.Config{Router: d, Strategy: strategy, Keys: pinnedRoots})
//	go p.Run(ctx)
//	// add: p.Announce(ctx, root, blocks); get: p.FindProviders(ctx, root, 0)
