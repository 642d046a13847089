// Package fetch gets DAGs: it is the one path by which content that is not
// here comes from the network, for every surface (the CLI's get, cat, pin
// add, export and ls, the gateway, the daemon API).
//
// A Fetcher owns everything about getting a DAG: the gc hold that keeps
// what it fetches from being collected before the caller is done, the
// blockstore batch that stores the fetched blocks with its checkpoints (a
// killed get resumes from them), the metrics and the live transfers of the
// status page, finding providers (connected peers, peers as they connect,
// then the DHT), the idle timeout (the session's progress watchdog, set per
// fetch), and the background commit of a streaming fetch's last blocks,
// which reads through Local wait for, so that no caller has to remember to.
//
// Blocks come from a Source: a block exchange protocol that answers "does
// peer p have c?" and runs sessions that fetch a DAG from many providers.
// A second protocol is a second Source, not a second path.
//
// Three ways in, one path underneath:
//
//	Read   streams the DAG to a reader as it arrives (cat, get); the last
//	       blocks are committed in the background.
//	Have   makes the DAG complete and durable here, then runs a function
//	       while gc still cannot remove it (pin add, export).
//	Getter fetches blocks on demand, starting a session at the first
//	       missing one (the gateway, ls).
package fetch
