package node

import (
	"errors"

	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// Daemon is a node on the network for the long run: it listens, serves
// blocks, finds peers, and its caller serves the local API on
// $SHARE_PATH/api.sock. Closing the node stops the network.
type Daemon struct {
	*Node
	Host   *p2p.Host
	Logger *slog.Logger
}

// StartDaemon joins the network (see StartNetwork) for a long-running
// node; the caller serves the API.
func (n *Node) StartDaemon(ctx context.Context, opts NetworkOptions) (*Daemon, error) {
	nw, err := n.StartNetwork(ctx, opts)
	if err != nil {
		return nil, err
	}
	n.netMu.Lock()
	n.netSince = time.Now()
	n.netMu.Unlock()
	nw.startFollowers(n)
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Daemon{Node: n, Host: nw.Host, Logger: logger}, nil
}

// ID returns the PeerID and the dialable addresses (with /p2p/ID).
func (d *Daemon) ID(ctx context.Context) (IDInfo, error) {
	info := IDInfo{ID: d.Host.ID().String(), Addresses: p2pAddrs(d.Host.ID(), d.Host.Addrs())}
	d.net.reachability(&info)
	return info, nil
}

// ListenAddrs returns the actual listen addresses with /p2p/ID.
func (d *Daemon) ListenAddrs() []string {
	return p2pAddrs(d.Host.ID(), d.Host.ListenAddrs())
}

func p2pAddrs(id peer.ID, addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String()+"/p2p/"+id.String())
	}
	return out
}

// Connect dials a multiaddr ending in /p2p/ID and returns the peer's ID
// once the connection is authenticated.
func (d *Daemon) Connect(ctx context.Context, addr string) (string, error) {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return "", fmt.Errorf("invalid multiaddr %q: %v", addr, err)
	}
	if _, err := m.ValueForProtocol(ma.P_P2P); err != nil {
		return "", fmt.Errorf("multiaddr %q has no /p2p/ID part: share needs to know whom it dials", addr)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	id, err := d.Host.ConnectAddr(ctx, m)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", addr, err)
	}
	return id.String(), nil
}

// SetConfig changes one key of the running daemon's configuration and
// saves it. Most keys take effect at the next start; new Bootstrap peers
// are dialled at once.
func (d *Daemon) SetConfig(ctx context.Context, key, value string) error {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	old := d.Repo.Config()
	c, err := old.Set(key, value)
	if err != nil {
		return err
	}
	if err := d.Repo.SaveConfig(c); err != nil {
		return err
	}
	known := make(map[string]bool)
	for _, b := range old.Bootstrap {
		known[b] = true
	}
	for _, b := range c.Bootstrap {
		if known[b] || d.net == nil {
			continue
		}
		if ai, err := peer.AddrInfoFromString(b); err == nil {
			nw := d.net
			nw.wg.Add(1)
			go func() { defer nw.wg.Done(); nw.keepConnected(nw.ctx, ai) }()
		}
	}
	return nil
}

// ErrNoDHT is returned by Provide and FindProviders when Routing.Mode is off.
var ErrNoDHT = errors.New("the DHT is off (Routing.Mode is \"off\")")

// Provide announces c in the DHT now and waits for the announcement.
func (d *Daemon) Provide(ctx context.Context, c cid.Cid) error {
	d.netMu.Lock()
	nw := d.net
	d.netMu.Unlock()
	if nw == nil || nw.Provider == nil {
		return ErrNoDHT
	}
	if ok, err := d.local().Has(ctx, c); err != nil || !ok {
		return errs.E(errs.Op("provide"), errs.NotFound, c, errors.New("not found locally"))
	}
	return nw.Routing.Provide(ctx, [][]byte{c.Hash()})
}

// FindProviders streams the providers of c the DHT knows, at most max
// (<= 0: no limit), until ctx ends or the lookup does.
func (d *Daemon) FindProviders(ctx context.Context, c cid.Cid, max int, fn func(peer.AddrInfo)) error {
	d.netMu.Lock()
	nw := d.net
	d.netMu.Unlock()
	if nw == nil || nw.Provider == nil {
		return ErrNoDHT
	}
	for ai := range nw.Provider.FindProviders(ctx, c, max) {
		fn(ai)
	}
	return ctx.Err()
}
