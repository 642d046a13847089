// Package provide tells the network which content this node has and finds
// who has content. A Store keeps the provider records the node serves as
// a DHT server (48 h each, limits per provider and per key, persisted in a
// keyspace); a Provider announces what add stores, per strategy (roots,
// all, none), re-announces every 22 h in batches whose nearby keys share
// DHT lookups (dht.Provide), and streams providers as a lookup finds them.
package provide
