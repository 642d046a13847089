package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/share-p2p/share/api"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
)

func provideCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "provide CID[/PATH]",
		Short: "Announce now, in the DHT, that this node has CID (for debugging)",
		Long: `Provide makes the daemon announce a provider record for CID at once and
waits until the closest DHT peers took it. add already announces what it
adds (Provide.Strategy), and records are re-announced every 22 h.`,
		Example: "  share provide bafyb4i...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cl, err := cidForDaemon(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cl.Provide(cmd.Context(), c); err != nil {
				return err
			}
			return report(g, map[string]string{"Cid": c.String()}, "announced %s", c)
		},
	}
}

func routingCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "routing",
		Short:   "Ask the DHT (for debugging): findprovs",
		Example: "  share routing findprovs bafyb4i...",
	}
	var max int
	find := &cobra.Command{
		Use:     "findprovs CID[/PATH]",
		Short:   "List the providers of CID (or of the CID a path names) that a DHT lookup finds",
		Example: "  share routing findprovs -n 5 bafyb4i...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cl, err := cidForDaemon(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer cl.Close()
			found := 0
			err = cl.FindProviders(cmd.Context(), c, max, func(id string, addrs []string) {
				found++
				switch {
				case g.json:
					printJSON(g.stdout, map[string]any{"ID": id, "Addrs": addrs})
				case g.quiet:
					fmt.Fprintln(g.stdout, id)
				default:
					fmt.Fprintf(g.stdout, "%s %s\n", id, strings.Join(addrs, " "))
				}
			})
			if err != nil {
				return err
			}
			if found == 0 {
				return errs.Errorf(errs.NotFound, "no provider of %s found", c)
			}
			return nil
		},
	}
	find.Flags().IntVarP(&max, "num-providers", "n", 20, "stop after this many providers")
	cmd.AddCommand(find)
	return cmd
}

// cidForDaemon parses a CID or path argument, connects to the running
// daemon (the DHT commands need one) and has it resolve a path.
func cidForDaemon(ctx context.Context, arg string) (cid.Cid, *api.Client, error) {
	paths, err := parsePaths([]string{arg})
	if err != nil {
		return cid.Undef, nil, err
	}
	cl, err := daemonClient()
	if err != nil {
		return cid.Undef, nil, err
	}
	c, err := cl.Resolve(ctx, paths[0], node.FetchOptions{})
	if err != nil {
		cl.Close()
		return cid.Undef, nil, err
	}
	return c, cl, nil
}
