// Package node builds a share node from a repository and wires its parts:
// the blockstore, the DAG importer and reader, pins and gc (and, when it
// runs as a daemon, the network). Its methods are what the CLI and the API
// call; they hold no presentation logic.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/fetch"
	"github.com/share-p2p/share/gc"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/metrics"
	"github.com/share-p2p/share/pin"
	"github.com/share-p2p/share/provide"
	"github.com/share-p2p/share/repo"
)

// Node is an open repository with its pin set and gc lock.
type Node struct {
	Repo   *repo.Repo
	Blocks *blockstore.Store
	Pins   *pin.Set
	GCLock gc.Lock

	netMu    sync.Mutex
	net      *Network
	netSince time.Time // when net started (fetches give mDNS a grace)
	startNet func(ctx context.Context) (*Network, error)

	// fetcher is the one way content comes from the network; every read
	// of blocks goes through its Local view.
	fetcher    *fetch.Fetcher
	finishHook func() // tests: runs before each background commit

	// values holds the DHT records this node serves and its own names'
	// (keyspace 'V'); names what it publishes, for the republisher ('N').
	values *dht.ValueStore
	names  share.KV

	// follow registers the folders followed; followKV keeps their state
	// (keyspace 'F', by folder).
	follow   followers
	followKV share.KV

	stats       statCache
	metricsOnce sync.Once
	metrics     *metrics.Node
}

// Open opens (and on first use initialises) the repository at path.
func Open(path string) (*Node, error) {
	r, err := repo.Open(path)
	if err != nil {
		return nil, err
	}
	n := &Node{Repo: r, Blocks: r.Blocks, Pins: pin.New(r.Blocks.Keyspace('p')), names: r.Blocks.Keyspace('N'),
		followKV: r.Blocks.Keyspace('F')}
	n.values, err = dht.NewValueStore(dht.ValueStoreConfig{
		KV:         r.Blocks.Keyspace('V'),
		Validators: map[string]dht.Validator{"ipns": ipns.Validator{}},
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	n.fetcher = fetch.New(fetch.Config{
		Store:   r.Blocks,
		Lock:    &n.GCLock,
		Online:  n.online,
		Fetched: func(k int) { n.Metrics().BlocksFetched.Add(uint64(k)) },
		Changed: n.invalidateStat,
		BeforeCommit: func() {
			if n.finishHook != nil {
				n.finishHook()
			}
		},
	})
	return n, nil
}

// local is the blockstore as readers see it (fetch.Local): reads wait for
// fetches that are still committing their last blocks.
func (n *Node) local() fetch.Local { return n.fetcher.Local() }

// Close stops the fetches still running, the network, if it runs, and
// closes the repository.
func (n *Node) Close() error {
	n.fetcher.Close()
	// The network closes outside netMu: its goroutines (the republisher,
	// the followers) may be waiting for netMu in n.network as it waits
	// for them.
	n.netMu.Lock()
	nw := n.net
	n.net, n.startNet = nil, nil // and none starts again
	n.netMu.Unlock()
	if nw != nil {
		nw.Close()
	}
	return n.Repo.Close()
}

// AddOptions control Add.
type AddOptions struct {
	Recursive bool   // directories are allowed
	Chunker   string // "size-N"; "" = default (1 MiB; 256 KiB with CIDv0, as kubo)
	// Format is kubo's --cid-version, --hash and --raw-leaves; unset
	// fields take share's defaults (dag.FormatOptions.Format).
	Format   dag.FormatOptions
	NoPin    bool        // do not pin the root
	PinName  string      // name of the pin
	Progress func(int64) // called with bytes imported so far (may be nil)
}

// Added is one file or directory imported by Add.
type Added struct {
	Name string
	Cid  cid.Cid
	Size uint64 `json:",omitempty"`
}

// Add imports the file or directory at path ("-" with r for a stream)
// and pins its root unless told not to. onEntry sees each file and
// directory as it is done. Add returns only after the blocks and the pin
// are durable.
func (n *Node) Add(ctx context.Context, path string, r io.Reader, opts AddOptions, onEntry func(Added)) (cid.Cid, error) {
	iopts, err := importOptions(withImportConfig(opts, n.Repo.Config()))
	if err != nil {
		return cid.Undef, err
	}
	if r == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return cid.Undef, fmt.Errorf("add %s: %w", path, errors.Unwrap(err))
		}
		if fi.IsDir() && !opts.Recursive {
			return cid.Undef, fmt.Errorf("add %s: is a directory (use -r to add directories)", path)
		}
	}
	unlock := n.GCLock.Writer()
	defer unlock()
	batch := n.Blocks.NewBatch()
	defer batch.Close()
	if opts.Progress != nil {
		iopts.Progress = func(done uint64) { opts.Progress(int64(done)) }
	}
	var root cid.Cid
	if r != nil {
		var size uint64
		root, size, err = dag.ImportFile(ctx, r, batch, iopts)
		if err == nil && onEntry != nil {
			onEntry(Added{Name: path, Cid: root, Size: size})
		}
	} else {
		root, err = dag.ImportPath(ctx, path, batch, iopts, func(c cid.Cid, rel string, size uint64) {
			if onEntry != nil {
				onEntry(Added{Name: rel, Cid: c, Size: size})
			}
		})
	}
	if err != nil {
		return cid.Undef, fmt.Errorf("add %s: %w", path, err)
	}
	if err := batch.Commit(ctx); err != nil {
		return cid.Undef, fmt.Errorf("add %s: %w", path, err)
	}
	if !opts.NoPin {
		if err := n.Pins.Add(ctx, root, pin.Recursive, opts.PinName); err != nil {
			return cid.Undef, err
		}
	}
	n.invalidateStat()
	n.announce(ctx, root)
	return root, nil
}

// withImportConfig fills the format settings opts leaves unset from the
// config's Import section.
func withImportConfig(opts AddOptions, cfg *repo.Config) AddOptions {
	f, im := &opts.Format, cfg.ImportFormat()
	if f.CIDVersion == nil {
		f.CIDVersion = im.CIDVersion
	}
	if f.Hash == "" {
		f.Hash = im.Hash
	}
	if f.RawLeaves == nil {
		f.RawLeaves = im.RawLeaves
	}
	if opts.Chunker == "" && cfg.Import.UnixFSChunker != nil {
		opts.Chunker = *cfg.Import.UnixFSChunker
	}
	return opts
}

// importOptions makes the importer's options of opts: kubo's rules for
// the format and, when the user asks for CIDv0 and no chunker, kubo's
// chunker too, so that the CID is the Qm... kubo gives.
func importOptions(opts AddOptions) (dag.ImportOptions, error) {
	f, err := opts.Format.Format()
	if err != nil {
		return dag.ImportOptions{}, err
	}
	spec := opts.Chunker
	if spec == "" && f.CIDv0 {
		spec = "size-" + strconv.Itoa(dag.KuboChunkSize)
	}
	ch, err := chunker.Parse(spec)
	if err != nil {
		return dag.ImportOptions{}, err
	}
	return dag.ImportOptions{Chunker: ch, Format: f}, nil
}

// announce tells the network about a new root, when the node is on it.
func (n *Node) announce(ctx context.Context, root cid.Cid) {
	n.netMu.Lock()
	nw := n.net
	n.netMu.Unlock()
	if nw == nil || nw.Provider == nil {
		return
	}
	var blocks []cid.Cid
	if n.Repo.Config().Provide.Strategy == "all" {
		dag.Walk(ctx, n.local(), root, dag.WalkOptions{}, func(c cid.Cid) error {
			blocks = append(blocks, c)
			return nil
		})
	}
	nw.Announce(root, blocks)
}

// provideKeys calls fn with each key reprovides announce: the pinned
// roots, or every block with the "all" strategy. fn does not keep key.
func (n *Node) provideKeys(ctx context.Context, strategy provide.Strategy, fn func(key []byte) error) error {
	switch strategy {
	case provide.All:
		return n.Blocks.ForEach(ctx, func(mh multihash.Multihash, _ int) error { return fn(mh) })
	case provide.Roots:
		pins, err := n.Pins.List(ctx)
		if err != nil {
			return err
		}
		for _, p := range pins {
			if err := fn(p.Cid.Hash()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Cat writes the file at c to w, fetching what is missing.
func (n *Node) Cat(ctx context.Context, c cid.Cid, w io.Writer, opts FetchOptions) (int64, error) {
	var written int64
	err := n.fetcher.Read(ctx, c, opts, func(g share.Getter, _ bool) error {
		fr, err := dag.NewFileReader(ctx, g, c)
		if err != nil {
			return err
		}
		written, err = fr.WriteTo(w)
		return err
	})
	return written, err
}

// Get writes the file or directory at c to out, fetching what is missing;
// fetched blocks are written out as they arrive and stay cached, unpinned.
func (n *Node) Get(ctx context.Context, c cid.Cid, out string, opts GetOptions) error {
	return n.fetcher.Read(ctx, c, opts.FetchOptions, func(g share.Getter, local bool) error {
		wopts := dag.WriteOptions{Links: opts.Links, Refused: opts.Refused}
		// A fetch reports its own progress; the writer's would repeat it.
		if local && opts.Progress != nil {
			wopts.Progress = func(done uint64) { opts.Progress(Progress{Phase: "writing", Bytes: int64(done)}) }
		}
		return dag.WriteTo(ctx, g, c, out, wopts)
	})
}

// Ls lists the directory at c. A directory that is not here is read from
// the network (its own blocks and the first block of each entry, which
// stay cached, unpinned), giving up after opts.Timeout (default 30 s) in
// all; opts.Progress is not used.
func (n *Node) Ls(ctx context.Context, c cid.Cid, opts FetchOptions) ([]Entry, error) {
	des, err := dag.ReadDir(ctx, n.local(), c)
	if errs.Is(errs.NotFound, err) {
		des, err = n.lsRemote(ctx, c, opts)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(des))
	for i, d := range des {
		out[i] = Entry{Name: d.Name, Cid: d.Cid, Type: d.Type.String(), Size: d.Size}
		if d.HasMode {
			out[i].Mode = &d.Mode
		}
		if !d.Mtime.IsZero() {
			out[i].Mtime = &d.Mtime
		}
	}
	return out, nil
}

// lsRemote reads the directory at c through an on-demand fetch that ends
// after opts.Timeout.
func (n *Node) lsRemote(ctx context.Context, c cid.Cid, opts FetchOptions) ([]dag.DirEntry, error) {
	timeout := opts.IdleTimeout()
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	g := n.fetcher.Getter(fctx, opts)
	des, err := dag.ReadDir(fctx, g, c)
	g.Close()
	if err != nil && ctx.Err() == nil && fctx.Err() != nil {
		return nil, fetch.TimedOut(c, timeout)
	}
	return des, err
}

// PinRm unpins c.
func (n *Node) PinRm(ctx context.Context, c cid.Cid) error { return n.Pins.Remove(ctx, c) }

// PinLs lists the pins.
func (n *Node) PinLs(ctx context.Context) ([]pin.Pin, error) { return n.Pins.List(ctx) }

// ID returns the node's PeerID; a node without a network has no addresses.
func (n *Node) ID(ctx context.Context) (IDInfo, error) {
	return IDInfo{ID: n.Repo.Identity.ID.String(), Addresses: []string{}, Reachability: "unknown",
		PublicAddresses: []string{}, ObservedAddresses: []string{}}, nil
}

// PinAdd pins c after fetching what is missing (the DAG under c for a
// recursive pin, the block c alone for a direct one) and checking that
// its content is complete and intact.
func (n *Node) PinAdd(ctx context.Context, c cid.Cid, mode pin.Mode, name string, opts FetchOptions) error {
	pinIt := func(g share.Getter) error {
		if err := pin.Complete(ctx, g, c, mode); err != nil {
			return err
		}
		return n.Pins.Add(ctx, c, mode, name)
	}
	have := n.fetcher.Have
	if mode == pin.Direct {
		have = n.fetcher.HaveBlock // the root block alone
	}
	err := have(ctx, c, opts, pinIt)
	if err != nil {
		return errs.E(errs.Op("pin"), c, err)
	}
	return nil
}

// PinVerify checks every pin's content; report is called once per pin.
func (n *Node) PinVerify(ctx context.Context, report func(pin.Pin, error)) (bad int, err error) {
	pins, err := n.Pins.List(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range pins {
		perr := pin.Complete(ctx, n.local(), p.Cid, p.Mode)
		if perr != nil {
			bad++
		}
		if report != nil {
			report(p, perr)
		}
		if ctx.Err() != nil {
			return bad, ctx.Err()
		}
	}
	return bad, nil
}

// GC removes every block that no pin reaches, except those of the fetches
// running as it starts, which it waits for (telling waiting, if not nil).
func (n *Node) GC(ctx context.Context, waiting func(gc.Waiting)) (gc.Result, error) {
	res, err := gc.Run(ctx, &n.GCLock, n.Blocks, n.Pins, gc.Options{Waiting: waiting})
	if err == nil {
		m := n.Metrics()
		m.GCRuns.Inc()
		m.GCFreedBlocks.Add(uint64(res.Blocks))
		m.GCFreedBytes.Add(uint64(res.Bytes))
	}
	n.invalidateStat()
	return res, err
}

// RepoStat describes the repository.
type RepoStat struct {
	Path       string
	Blocks     int64
	Bytes      int64
	DiskUsage  int64
	Pins       int
	StorageMax int64
}

// Stat returns the repository's sizes and counts.
func (n *Node) Stat(ctx context.Context) (RepoStat, error) {
	st, err := n.local().Store().Stat(ctx)
	if err != nil {
		return RepoStat{}, err
	}
	pins, err := n.Pins.Count(ctx)
	if err != nil {
		return RepoStat{}, err
	}
	max, _ := repo.ParseSize(n.Repo.Config().Datastore.StorageMax)
	return RepoStat{Path: n.Repo.Path, Blocks: int64(st.Blocks), Bytes: st.Bytes, DiskUsage: int64(st.DiskUsage), Pins: pins, StorageMax: max}, nil
}

// VerifyResult is what RepoVerify found. Its lists are empty, not nil,
// when nothing is wrong, so that JSON says [] and {}.
type VerifyResult struct {
	Blocks int
	// Corrupt lists the blocks whose bytes are damaged on disk or do not
	// match their hash: their CIDs as a pin's DAG links them, or with the
	// raw codec when no pin reaches them.
	Corrupt []string
	// Breaks maps each CID of Corrupt to the CIDs of the pins whose DAG
	// holds it (an empty list when no pin does).
	Breaks map[string][]string
	// BadPins lists the pins whose DAG is incomplete or corrupt, with the
	// reason.
	BadPins []string
}

// RepoVerify re-hashes every block and checks that every pin's DAG is
// complete; a damaged block is listed, with the pins it breaks, and the
// check goes on.
func (n *Node) RepoVerify(ctx context.Context, progress func(blocks int)) (VerifyResult, error) {
	res := VerifyResult{Corrupt: []string{}, Breaks: map[string][]string{}, BadPins: []string{}}
	corrupt, err := n.corruptBlocks(ctx, &res, progress)
	if err != nil {
		return res, err
	}
	if err := n.pinsHolding(ctx, corrupt, &res); err != nil {
		return res, err
	}
	_, err = n.PinVerify(ctx, func(p pin.Pin, err error) {
		if err != nil {
			res.BadPins = append(res.BadPins, fmt.Sprintf("%s: %v", p.Cid, err))
		}
	})
	return res, err
}

// corruptBlocks re-hashes every block, counting them in res, and returns
// the damaged ones, by multihash, with their index in res.Corrupt.
func (n *Node) corruptBlocks(ctx context.Context, res *VerifyResult, progress func(blocks int)) (map[string]int, error) {
	corrupt := make(map[string]int)
	store := n.local().Store()
	err := store.ForEach(ctx, func(mh multihash.Multihash, size int) error {
		c := cid.NewCidV1(cid.Raw, mh)
		b, err := store.Get(ctx, c)
		switch {
		case errs.Is(errs.Corrupt, err):
		case err != nil:
			return err
		default:
			err = dag.Verify(c, b.Data)
			if err == nil && len(b.Data) != size {
				err = errs.New(errs.Corrupt, "size differs from the index's")
			}
			b.Release()
		}
		if err != nil {
			corrupt[string(mh)] = len(res.Corrupt)
			res.Corrupt = append(res.Corrupt, c.String())
		}
		res.Blocks++
		if progress != nil {
			progress(res.Blocks)
		}
		return nil
	})
	return corrupt, err
}

// pinsHolding fills res.Breaks: for each corrupt block, the pins whose DAG
// holds it, found by walking every pin's DAG (and naming the block as the
// DAG links it).
func (n *Node) pinsHolding(ctx context.Context, corrupt map[string]int, res *VerifyResult) error {
	if len(corrupt) == 0 {
		return nil
	}
	pins, err := n.Pins.List(ctx)
	if err != nil {
		return err
	}
	breaks := make([][]string, len(res.Corrupt))
	for _, p := range pins {
		held := func(c cid.Cid) error {
			i, ok := corrupt[string(c.Hash())]
			if !ok {
				return nil
			}
			res.Corrupt[i] = c.String()
			if k := len(breaks[i]); k == 0 || breaks[i][k-1] != p.Cid.String() {
				breaks[i] = append(breaks[i], p.Cid.String())
			}
			return dag.SkipNode // its children cannot be read
		}
		if p.Mode == pin.Direct {
			held(p.Cid)
			continue
		}
		// A walk that fails elsewhere (a missing block) is PinVerify's to
		// report; what it reached is still counted.
		if err := dag.Walk(ctx, n.local(), p.Cid, dag.WalkOptions{}, held); ctx.Err() != nil {
			return err
		}
	}
	for i, c := range res.Corrupt {
		res.Breaks[c] = append([]string{}, breaks[i]...)
	}
	return nil
}
