// Package provide tells the network which content this node has and finds
// who has content. A Store keeps the provider records the node serves as
// a DHT server (48 h each, limits per provider and per key, persisted in a
// keyspace); a Provider announces what add stores, per strategy (roots,
// all, none), re-announces every key every 22 h by sweeping the key space
// region by region, spread evenly over the interval (the position
// persisted, so a restart goes on from it), each region in one
// dht.Provide whose nearby keys share lookups and streams, and streams
// providers as a lookup finds them.
package provide
