package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/api"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/gateway"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/repo"
)

func daemonCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the node: listen, find peers, serve blocks, serve the local API",
		Long: `Daemon opens the repository, listens on Addresses.Listen, and serves the
local API on $SHARE_PATH/api.sock: while it runs, every other share command
goes through it. It prints one "listening on MULTIADDR" line per address
peers can dial (each interface's address for 0.0.0.0, as 'share id'
prints them), then "daemon ready", and runs until SIGINT or SIGTERM.`,
		Example: "  share daemon &\n  share id --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath()
			if err != nil {
				return err
			}
			n, err := node.Open(p)
			if errs.Is(errs.InUse, err) && daemonRunning(p) {
				return alreadyRunning(p)
			}
			if err != nil {
				return err
			}
			defer n.Close()
			ctx := cmd.Context()
			d, err := n.StartDaemon(ctx, node.NetworkOptions{Logger: slog.Default()})
			if err != nil {
				return err
			}
			srv := api.NewDaemonServer(d, slog.Default())
			_, errc, err := api.ServeUnix(ctx, srv, filepath.Join(p, repo.APISocket))
			if err != nil {
				return err
			}
			gw := startGateway(ctx, g, n)
			go n.AutoGC(ctx, slog.Default())
			// The addresses peers dial (as share id prints them): an
			// unspecified listen address (0.0.0.0) stands for every
			// interface's, and is not dialable itself.
			id, _ := d.ID(ctx)
			if err := printReady(g, id, gw); err != nil {
				return err
			}
			if err := <-errc; err != nil {
				return err
			}
			if !g.json {
				fmt.Fprintln(g.stderr, "daemon stopped")
			}
			return nil
		},
	}
}

// startGateway serves the gateway on Addresses.Gateway, if set, and
// returns its URL ("" when off). A gateway that cannot listen is said,
// not fatal: the node works without it.
func startGateway(ctx context.Context, g *globals, n *node.Node) string {
	addr := n.Repo.Config().Addresses.Gateway
	if addr == "" {
		return ""
	}
	gw := gateway.New(n, gateway.Options{Metrics: n.Metrics().Registry, Names: n})
	bound, err := api.ServeTCP(ctx, gw, addr)
	switch {
	case err != nil && g.json:
		slog.Warn("gateway off", "err", err)
	case err != nil:
		fmt.Fprintf(g.stderr, "share: gateway off: %v (set Addresses.Gateway to another host:port, or \"\")\n", err)
	case !g.json:
		fmt.Fprintf(g.stderr, "gateway on http://%s/ (status page at /, content at /ipfs/CID)\n", bound)
	}
	if err != nil {
		return ""
	}
	return fmt.Sprintf("http://%s/", bound)
}

// printReady says the daemon serves: a "listening on" line per address
// and "daemon ready", or with --json one object.
func printReady(g *globals, id node.IDInfo, gateway string) error {
	if g.json {
		return printJSON(g.stdout, struct {
			ID        string
			Addresses []string
			Gateway   string `json:",omitempty"`
		}{id.ID, id.Addresses, gateway})
	}
	for _, a := range id.Addresses {
		fmt.Fprintf(g.stdout, "listening on %s\n", a)
	}
	_, err := fmt.Fprintln(g.stdout, "daemon ready")
	return err
}

// daemonRunning reports whether a daemon answers on the API socket of the
// repository at p.
func daemonRunning(p string) bool {
	c, err := api.Dial(filepath.Join(p, repo.APISocket))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// alreadyRunning is the error of a second daemon on the repository at p,
// naming the first (the hint of a repository in use would ask whether a
// daemon runs).
func alreadyRunning(p string) error {
	if pid := repo.Holder(p); pid > 0 {
		return errs.Errorf(errs.Exist, "a daemon is already running (pid %d)", pid)
	}
	return errs.New(errs.Exist, "a daemon is already running")
}

// daemonClient returns the running daemon's client or a clear error.
func daemonClient() (*api.Client, error) {
	p, err := repoPath()
	if err != nil {
		return nil, err
	}
	c, err := api.Dial(filepath.Join(p, repo.APISocket))
	if errors.Is(err, api.ErrNoDaemon) {
		return nil, errs.New(errs.Unreachable, "no daemon is running for this repository (start one with 'share daemon')")
	}
	return c, err
}

func connectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "connect MULTIADDR",
		Short:   "Connect the daemon to a peer",
		Example: "  share connect /ip4/192.168.1.5/tcp/4001/p2p/12D3KooW...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemonClient()
			if err != nil {
				return err
			}
			defer c.Close()
			id, err := c.Connect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return report(g, map[string]string{"ID": id}, "connected to %s", id)
		},
	}
}

func peersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List the daemon's connected peers and the blocks exchanged with each",
		Long: `List the daemon's connected peers, one a line: the address, the
direction, the block protocol (share or bitswap), "relayed" for a
connection through a relay, then the current rate, bytes and blocks in
(what the peer sent) and out (what this node served it), since it
connected. Rates are over the last 5 seconds.`,
		Example: "  share peers\n  share peers --json | jq -s 'sort_by(-.BytesIn)'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemonClient()
			if err != nil {
				return err
			}
			defer c.Close()
			peers, err := c.Peers(cmd.Context())
			if err != nil {
				return err
			}
			for _, p := range peers {
				switch {
				case g.json:
					printJSON(g.stdout, p)
				case g.quiet:
					fmt.Fprintln(g.stdout, p.ID)
				default:
					fmt.Fprintln(g.stdout, peerLine(p))
				}
			}
			return nil
		},
	}
}

// peerLine is a peer of 'share peers': "ADDR/p2p/ID DIRECTION PROTOCOL
// [relayed] in RATE (BYTES, N blocks) out RATE (BYTES, N blocks)".
func peerLine(p node.PeerInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/p2p/%s %s", p.Addr, p.ID, p.Direction)
	if p.Protocol != "" {
		b.WriteString(" " + p.Protocol)
	}
	if p.Relayed {
		b.WriteString(" relayed")
	}
	fmt.Fprintf(&b, " in %s/s (%s, %s) out %s/s (%s, %s)",
		humanBytes(p.RateIn), humanBytes(p.BytesIn), blocks(p.BlocksIn),
		humanBytes(p.RateOut), humanBytes(p.BytesOut), blocks(p.BlocksOut))
	return b.String()
}

func blocks(n int64) string {
	if n == 1 {
		return "1 block"
	}
	return fmt.Sprintf("%d blocks", n)
}
