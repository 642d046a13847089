package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/api"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/node"
)

func followCmd(g *globals) *cobra.Command {
	var (
		dir  string
		opts node.FollowOptions
	)
	cmd := &cobra.Command{
		Use:   "follow NAME -o DIR",
		Short: "Keep a folder at the newest version an IPNS name points at",
		Long: `follow writes the folder NAME points at to DIR, then keeps DIR at each
new version as its publisher runs 'share name publish' again: a running
daemon hears of a new record on the name's pubsub topic within a second
(and asks the DHT every 5 minutes besides); it fetches only the blocks
that changed, rewrites only the files that changed (each atomically) and
removes those the new version lacks. The newest version stays pinned,
the previous one is unpinned unless --keep. Files of yours in DIR (ones
follow did not write, or changed since) are left alone and reported.
One line is printed per version (NDJSON with --json); Ctrl-C stops.
Without a daemon, follow asks the DHT every 5 minutes only; to follow
for good, list the name in the daemon's config key Follow.`,
		Example: "  share follow k51qzi5uqu5d... -o ~/site\n  share follow --once /ipns/k51qzi5uqu5d... -o ~/site\n  share follow ls",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := ipns.ParseName(args[0]); err != nil {
				return errs.E(errs.Invalid, err)
			}
			if dir == "" {
				return errs.New(errs.Invalid, "follow: which folder? (-o DIR)")
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			opts.Updated = func(u node.FollowUpdate) { printUpdate(g, u) }
			return runFollow(cmd.Context(), g, args[0], abs, opts)
		},
	}
	cmd.Flags().StringVarP(&dir, "output", "o", "", "the folder to keep at the newest version")
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "keep each previous version pinned")
	cmd.Flags().BoolVar(&opts.Once, "once", false, "update the folder once, then exit")
	cmd.AddCommand(followLsCmd(g))
	return cmd
}

// runFollow follows through the daemon if one runs, or else in this
// process, whose temporary node has no pubsub: it polls the DHT only.
func runFollow(ctx context.Context, g *globals, name, dir string, opts node.FollowOptions) error {
	n, err := openNode()
	if err != nil {
		return err
	}
	defer n.Close()
	switch n := n.(type) {
	case *api.Client:
		return n.Follow(ctx, name, dir, opts, opts.Updated)
	case *node.Node:
		if !opts.Once {
			slog.Warn("no daemon runs: following by DHT lookups every 5 min; start 'share daemon' to hear of new versions within a second")
		}
		return n.Follow(ctx, name, dir, opts)
	}
	return fmt.Errorf("follow: unexpected node %T", n)
}

// printUpdate prints one version written (or a failed attempt, on
// stderr: follow goes on).
func printUpdate(g *globals, u node.FollowUpdate) {
	if g.json {
		printJSON(g.stdout, u)
		return
	}
	if u.Err != "" {
		fmt.Fprintf(g.stderr, "share: follow %s: %s\n", u.Name, u.Err)
		return
	}
	for _, k := range u.Kept {
		fmt.Fprintf(g.stderr, "share: follow %s: kept %s\n", u.Dir, k)
	}
	if g.quiet {
		fmt.Fprintln(g.stdout, u.Cid)
		return
	}
	fmt.Fprintf(g.stdout, "%s sequence %d: %s: %d written, %d removed, %d unchanged, %d blocks fetched, in %v\n",
		u.At.Local().Format(time.DateTime), u.Sequence, u.Cid, u.Written, u.Removed, u.Unchanged, u.Fetched, u.Took.Round(time.Millisecond))
}

func followLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List the folders the daemon follows",
		Example: "  share follow ls",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemonClient()
			if err != nil {
				return err
			}
			defer c.Close()
			list, err := c.Following(cmd.Context())
			if err != nil {
				return err
			}
			for _, f := range list {
				line := fmt.Sprintf("%s %s %s sequence %d", f.Name, f.Dir, orDash(f.Cid), f.Sequence)
				if f.Err != "" {
					line += " (last attempt failed: " + f.Err + ")"
				}
				if err := report(g, f, "%s", line); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
