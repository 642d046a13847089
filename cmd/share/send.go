package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/repo"
	"github.com/share-p2p/share/send"
)

func sendCmd(g *globals) *cobra.Command {
	var network string
	cmd := &cobra.Command{
		Use:   "send PATH",
		Short: "Send a file or directory to one receiver, who types the code this prints",
		Long: `Send adds PATH to a temporary repository, prints a short code
(7-crystal-tunnel) and waits until one receiver, running
'share receive CODE' on this LAN or through the bootstrap peers and the
DHT, has all of it; then it exits 0. No daemon or repository is needed;
the temporary repository (in $TMPDIR, as big as PATH) is removed at exit.

The code's number is public (it names the rendezvous); its two words are
the secret both ends prove with a PAKE, so the content's CID is never
announced and only the receiver who typed the right code is served. A
wrong code fails the receiver at once and is shown here; after 3 wrong
codes send gives up (exit 1): send again for a new code.`,
		Example: "  share send photos/\n  share send --network ipfs report.pdf",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err != nil {
				return errs.E(errs.KindOf(err), "send "+args[0], errors.Unwrap(err))
			}
			return withTempNode("", network, true, func(n *node.Node) error {
				return runSend(cmd.Context(), g, n, args[0])
			})
		},
	}
	cmd.Flags().StringVar(&network, "network", "", "network name (default: the repository's Network, else share)")
	return cmd
}

// runSend sends path from n and prints the code, what happens, and what
// was sent.
func runSend(ctx context.Context, g *globals, n *node.Node, path string) error {
	sb := &sendBar{g: g}
	defer sb.end()
	res, err := n.Send(ctx, path, node.SendOptions{
		Network: tempNetwork(n),
		OnCode: func(c send.Code, o send.Offer) {
			sb.size = int64(o.Size)
			printCode(g, c, o)
		},
		OnEvent: sb.event,
	})
	sb.end()
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, struct {
			Sent, Peer string
			Size       uint64
		}{filepath.Base(filepath.Clean(path)), res.Peer.String(), res.Bytes})
	}
	if !g.quiet {
		fmt.Fprintf(g.stderr, "sent %s (%s) to %s\n", displayName(filepath.Base(filepath.Clean(path))), humanBytes(int64(res.Bytes)), shortPeer(res.Peer.String()))
	}
	return nil
}

// printCode prints the code (on stdout: scripts read it) and how to use it.
func printCode(g *globals, c send.Code, o send.Offer) {
	switch {
	case g.json:
		printJSON(g.stdout, struct {
			Code, Name string
			Size       uint64
		}{c.String(), o.Name, o.Size})
	case g.quiet:
		fmt.Fprintln(g.stdout, c)
	default:
		fmt.Fprintf(g.stderr, "sending %s (%s); on the other machine run:\n\n", displayName(o.Name), humanBytes(int64(o.Size)))
		fmt.Fprintf(g.stdout, "    share receive %s\n\n", c)
		fmt.Fprintln(g.stderr, "waiting for the receiver (Ctrl-C to stop)...")
	}
}

// sendBar shows, on a terminal, how much the receiver says it has (it
// reports every few seconds), beside the lines of printSendEvent.
type sendBar struct {
	g    *globals
	size int64
	bar  *progressbar.ProgressBar
}

func (b *sendBar) event(e send.Event) {
	switch e.Kind {
	case send.Accepted:
		printSendEvent(b.g, e)
		if b.g.showProgress() && b.bar == nil {
			b.bar = newBar(b.g.stderr, b.size, "sending to "+shortPeer(e.Peer.String()))
		}
	case send.Progress:
		if b.bar != nil {
			b.bar.Set64(int64(e.Bytes))
		}
	default:
		b.end() // a line under the bar
		printSendEvent(b.g, e)
	}
}

// end stops the bar, if any.
func (b *sendBar) end() {
	if b.bar != nil {
		endBar(b.bar)
		b.bar = nil
	}
}

// printSendEvent tells the user what the receiver does.
func printSendEvent(g *globals, e send.Event) {
	if g.json || g.quiet {
		return
	}
	switch e.Kind {
	case send.WrongCode:
		fmt.Fprintf(g.stderr, "a receiver (%s) gave a wrong code (%d of %d); still waiting\n", shortPeer(e.Peer.String()), e.Failures, send.MaxFailures)
	case send.Accepted:
		fmt.Fprintf(g.stderr, "receiver %s confirmed the code; sending\n", shortPeer(e.Peer.String()))
	case send.Lost:
		fmt.Fprintf(g.stderr, "receiver %s went away before it had everything; waiting\n", shortPeer(e.Peer.String()))
	}
}

func receiveCmd(g *globals) *cobra.Command {
	var (
		out, network string
		timeout      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "receive CODE [-o PATH]",
		Short: "Receive what 'share send' sends under CODE",
		Long: `Receive finds the sender of CODE on this LAN (mDNS) or through the
bootstrap peers and the DHT, proves the code, fetches what it sends and
writes it to PATH (default: its name, in the current directory). No
daemon or repository is needed: the blocks go through a temporary
repository beside PATH, removed at exit. A wrong code fails at once.`,
		Example: "  share receive 7-crystal-tunnel\n  share receive 7-crystal-tunnel -o ~/Downloads/photos",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := send.ParseCode(args[0])
			if err != nil {
				return err
			}
			if out != "" {
				if err := checkFreeOutput(out); err != nil {
					return err
				}
			}
			dir := "."
			if out != "" {
				dir = filepath.Dir(out)
			}
			return withTempNode(dir, network, false, func(n *node.Node) error {
				return runReceive(cmd.Context(), g, n, code, out, timeout)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to write what is received (default: ./NAME)")
	cmd.Flags().StringVar(&network, "network", "", "network name (default: the repository's Network, else share)")
	cmd.Flags().DurationVar(&timeout, "timeout", node.DefaultTimeout, "give up finding the sender, or when nothing arrives, after this long")
	return cmd
}

// checkFreeOutput fails when out exists or cannot be written in.
func checkFreeOutput(out string) error {
	if _, err := os.Lstat(out); err == nil {
		return errs.Errorf(errs.Exist, "receive: %s already exists (choose another -o PATH or remove it)", out)
	}
	return checkOutputDir(out)
}

// runReceive receives code with n into out and reports it.
func runReceive(ctx context.Context, g *globals, n *node.Node, code send.Code, out string, timeout time.Duration) error {
	rep := newFetchReport(g)
	defer rep.end()
	offer, err := n.Receive(ctx, code, node.ReceiveOptions{
		Network: tempNetwork(n),
		Find:    timeout,
		Out:     out,
		OnOffer: func(o send.Offer, path string) error {
			out = path
			if !g.quiet && !g.json {
				fmt.Fprintf(g.stderr, "receiving %s (%s)\n", displayName(o.Name), humanBytes(int64(o.Size)))
			}
			return checkFreeOutput(path)
		},
		Fetch: node.FetchOptions{Timeout: timeout, Progress: rep.progress},
		Refused: func(path, target, why string) {
			fmt.Fprintf(g.stderr, "share: symlink %s -> %s not written: %s\n", displayName(path), displayName(target), why)
		},
	})
	if err != nil {
		return err
	}
	rep.end()
	return rep.saved(offer.Root.String(), offer.Name, out)
}

// withTempNode runs fn with a node in a temporary repository (in dir, or
// $TMPDIR when dir is ""), removed afterwards. Its config takes the
// network keys of the user's repository, when there is one (read only:
// a daemon may hold it), and network overrides Network.
func withTempNode(dir, network string, sender bool, fn func(*node.Node) error) error {
	tmp, err := os.MkdirTemp(dir, ".share-tmp-")
	if err != nil {
		return fmt.Errorf("temporary repository: %w", err)
	}
	defer os.RemoveAll(tmp)
	n, err := node.Open(tmp)
	if err != nil {
		return err
	}
	err = configureTemp(n, network, sender)
	if err == nil {
		err = fn(n)
	}
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}

// copySwarmKey gives the temporary repository tmp the private network's
// key of the user's repository user, if it has one: without it the node
// could reach none of the network's peers.
func copySwarmKey(user, tmp string) error {
	key, err := os.ReadFile(filepath.Join(user, repo.SwarmKeyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("swarm key: %w", err)
	}
	return os.WriteFile(filepath.Join(tmp, repo.SwarmKeyFile), key, 0o600)
}

// configureTemp copies the user's network keys into n's config.
func configureTemp(n *node.Node, network string, sender bool) error {
	cfg := n.Repo.Config()
	if p, err := repoPath(); err == nil {
		user, err := repo.LoadConfig(filepath.Join(p, repo.ConfigFile))
		switch {
		case err == nil:
			c := *cfg
			c.Network, c.Bootstrap, c.Discovery, c.Routing = user.Network, user.Bootstrap, user.Discovery, user.Routing
			cfg = &c
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if err := copySwarmKey(p, n.Repo.Path); err != nil {
			return err
		}
	}
	var err error
	if network != "" {
		if cfg, err = cfg.Set("Network", network); err != nil {
			return err
		}
	}
	if sender {
		// Nothing but the rendezvous is announced (Send adds before it
		// joins the network; this keeps it so).
		if cfg, err = cfg.Set("Provide.Strategy", "none"); err != nil {
			return err
		}
	}
	return n.Repo.SaveConfig(cfg)
}

// tempNetwork is how a temporary node joins the network: on ephemeral
// ports, logging where the command logs.
func tempNetwork(n *node.Node) node.NetworkOptions {
	return node.NetworkOptions{
		Logger:      slog.Default(),
		ListenAddrs: node.EphemeralAddrs(n.Repo.Config().Addresses.Listen),
	}
}
