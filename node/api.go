package node

import (
	"context"
	"io"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/gc"
	"github.com/share-p2p/share/pin"
)

// API is what the CLI asks of a node. *Node implements it in-process; the
// api package's Client implements it through a running daemon's socket.
type API interface {
	Add(ctx context.Context, path string, r io.Reader, opts AddOptions, onEntry func(Added)) (cid.Cid, error)
	// Resolve returns the CID that p names, fetching the directories on
	// the way that are not here (not the content they lead to). The
	// commands that take content resolve their paths with it first.
	Resolve(ctx context.Context, p dag.Path, opts FetchOptions) (cid.Cid, error)
	Cat(ctx context.Context, c cid.Cid, w io.Writer, opts FetchOptions) (int64, error)
	Get(ctx context.Context, c cid.Cid, out string, opts GetOptions) error
	Ls(ctx context.Context, c cid.Cid, opts FetchOptions) ([]Entry, error)
	PinAdd(ctx context.Context, c cid.Cid, mode pin.Mode, name string, opts FetchOptions) error
	PinRm(ctx context.Context, c cid.Cid) error
	PinLs(ctx context.Context) ([]pin.Pin, error)
	PinVerify(ctx context.Context, report func(pin.Pin, error)) (bad int, err error)
	// GC collects; waiting, if not nil, is told what it waits for when
	// fetches or adds hold the repository as it starts.
	GC(ctx context.Context, waiting func(gc.Waiting)) (gc.Result, error)
	Stat(ctx context.Context) (RepoStat, error)
	RepoVerify(ctx context.Context, progress func(blocks int)) (VerifyResult, error)
	ID(ctx context.Context) (IDInfo, error)
	Export(ctx context.Context, c cid.Cid, w io.Writer, opts FetchOptions) error
	Import(ctx context.Context, r io.Reader, pinRoots bool) ([]cid.Cid, error)
	// Publish points the name of a key at value (an /ipfs/ path) in a
	// signed IPNS record, stored here and in the DHT.
	Publish(ctx context.Context, value dag.Path, opts PublishOptions) (NameRecord, error)
	// ResolveName returns the best valid record of an IPNS name.
	ResolveName(ctx context.Context, name string) (NameRecord, error)
	Close() error
}

// GetOptions control Get: the fetch's, and which symlinks are written
// (dag.WriteOptions).
type GetOptions struct {
	FetchOptions
	Links dag.LinkPolicy
	// Refused, if not nil, sees each symlink not written because its
	// target is unsafe (dag.WriteOptions.Refused).
	Refused func(path, target, why string)
}

// Entry is one directory entry, as ls shows it.
type Entry struct {
	Name string
	Cid  cid.Cid
	Type string // "file", "directory", "symlink", "raw"
	Size uint64
	// Mode (permission bits with setuid, setgid and sticky) and Mtime
	// are the entry's UnixFS metadata, nil when it records none.
	Mode  *uint32    `json:",omitempty"`
	Mtime *time.Time `json:",omitempty"`
}

// IDInfo is what `share id` prints.
type IDInfo struct {
	ID        string
	Addresses []string
	// Reachability is AutoNAT's conclusion: "public", "private" or
	// "unknown" (always unknown without a daemon).
	Reachability string
	// PublicAddresses are the addresses AutoNAT servers confirm they can
	// dial; ObservedAddresses those enough peers report seeing this
	// node at.
	PublicAddresses   []string
	ObservedAddresses []string
}

var _ API = (*Node)(nil)
