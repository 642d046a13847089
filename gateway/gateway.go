// Package gateway is the node's read-only HTTP gateway: content under
// /ipfs/{cid}[/path] as kubo's path gateway serves it (files with ranges,
// directory listings, single blocks with ?format=raw, whole DAGs as CAR
// files with ?format=car), a status page at / (with its JSON at
// /api/status.json) and the metrics at /metrics.
//
// The handler depends only on the small Node interface, so the daemon wires
// it to the real node and tests to a dag.MemStore.
package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
)

// Node is what the gateway needs from the node.
type Node interface {
	// Getter returns the blocks for one request: from the blockstore and,
	// when they are not local, from the network, until ctx (the request's)
	// ends. The gateway verifies every block through the dag readers.
	// A block that does not exist must be an error of kind errs.NotFound
	// (the gateway answers 404), one that did not arrive in time of kind
	// errs.Timeout (a context deadline is one: 504). HTTPStatus gives the
	// status of every kind.
	Getter(ctx context.Context) share.Getter
	// Status describes the node for the status page. It should be cheap:
	// the page polls it every second.
	Status(ctx context.Context) Status
}

// Status is what the status page shows.
type Status struct {
	ID        string   // the PeerID
	Addresses []string // listen multiaddrs
	Peers     []PeerStatus
	// StorageUsed is the bytes the blockstore takes; StorageMax the limit
	// above which gc runs (0 = none); Blocks the number of blocks stored.
	StorageUsed int64
	StorageMax  int64
	Blocks      int64
	Pins        []PinStatus
	Transfers   []Transfer // fetches in progress
	// Following are the folders kept at the newest version of a name.
	Following []FollowStatus
	// Traffic is the node's block traffic, every peer's together.
	Traffic Traffic
}

// Traffic is the node's block traffic in and out: current rates, totals
// since the node joined the network, and the throughput of the last
// minutes for the graph.
type Traffic struct {
	RateIn, RateOut   int64 // bytes per second over the last few seconds
	BytesIn, BytesOut int64
	// In and Out are bytes per second, one point a second, oldest first,
	// the last one ending at the status's time (at most 300 points).
	In, Out []int64
}

// PeerStatus is a connected peer and the blocks exchanged with it since
// it connected.
type PeerStatus struct {
	ID       string
	Addr     string // the multiaddr of the connection
	Protocol string // "share", "bitswap", "share+bitswap" or ""
	Relayed  bool
	// RateIn and RateOut are bytes per second now; BytesIn what it sent
	// this node, BytesOut what this node served it.
	RateIn, RateOut     int64
	BytesIn, BytesOut   int64
	BlocksIn, BlocksOut int64
}

// PinStatus is a pin.
type PinStatus struct {
	Cid  string
	Mode string // "recursive" or "direct"
	Name string
}

// Transfer is a DAG being fetched.
type Transfer struct {
	Cid     string
	Bytes   int64 // fetched so far
	Total   int64 // expected, 0 when not known yet
	Peers   int   // peers it is fetched from
	Started time.Time
	// Rate is the current speed in bytes per second (over the last few
	// seconds, not since Started): the page's ETA divides by it.
	Rate int64
	From []TransferPeer // what each provider sent, most first
}

// TransferPeer is what one provider sent a transfer.
type TransferPeer struct {
	Peer     string
	Protocol string
	Blocks   int
	Bytes    int64
}

// Options tune the gateway. The zero value is usable.
type Options struct {
	// Metrics, if not nil, is served at /metrics (a *metrics.Registry).
	Metrics http.Handler
	// BlockTimeout bounds the wait for any one block; a block that takes
	// longer ends the request (504 before the response starts, a cut
	// response after). Default 30s.
	BlockTimeout time.Duration
	// StatusHosts are host names, besides IP addresses and localhost,
	// under which the status page and its JSON answer. Other names get
	// 403, so a web page cannot read them through DNS rebinding.
	StatusHosts []string
	// Logger receives request errors at debug level; nil means slog's
	// default logger.
	Logger *slog.Logger
	// Names, if not nil, resolves the IPNS names of /ipns/NAME/PATH
	// URLs; without it they are 404.
	Names Names
}

// Names resolves IPNS names (node.Node implements it).
type Names interface {
	// ResolvePath returns the /ipfs/ path that p, a path of an IPNS
	// name, leads to, and how long the answer may be cached (the
	// record's TTL).
	ResolvePath(ctx context.Context, p dag.Path) (dag.Path, time.Duration, error)
}

// Handler is the gateway's http.Handler.
type Handler struct {
	node Node
	opts Options
	log  *slog.Logger
}

// New returns the gateway handler for n.
func New(n Node, opts Options) *Handler {
	if opts.BlockTimeout <= 0 {
		opts.BlockTimeout = 30 * time.Second
	}
	h := &Handler{node: n, opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// ServeHTTP routes a request. Only GET and HEAD are allowed anywhere.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed: the gateway is read-only")
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := r.URL.Path
	switch {
	case (p == "/" || p == "/api/status.json") && !h.statusHost(r.Host):
		httpError(w, http.StatusForbidden, "forbidden: the status page answers only under an IP address, localhost or Options.StatusHosts")
	case p == "/":
		h.serveStatusPage(w, r)
	case p == "/api/status.json":
		h.serveStatusJSON(w, r)
	case p == "/metrics" && h.opts.Metrics != nil:
		h.opts.Metrics.ServeHTTP(w, r)
	case len(p) > len("/ipfs/") && (p[:len("/ipfs/")] == "/ipfs/" || p[:len("/ipns/")] == "/ipns/"):
		h.serveContent(w, r)
	default:
		httpError(w, http.StatusNotFound, "not found")
	}
}

// statusHost reports whether the status page may answer under host.
func (h *Handler) statusHost(host string) bool {
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	for _, a := range h.opts.StatusHosts {
		if strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

// httpError writes a one-line plain-text error.
func httpError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("ETag")
	h.Del("Cache-Control")
	h.Del("Content-Disposition")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write([]byte(msg + "\n"))
}
