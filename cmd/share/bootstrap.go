package main

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/peer"
)

func bootstrapCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "The peers dialled at start: add, rm, ls",
		Long: `Bootstrap peers are dialled when the daemon starts (and redialled with
backoff); they are the way into the DHT beyond the LAN. The list is empty by
default. Entries are multiaddrs that end in /p2p/ID.`,
		Example: `  share bootstrap add /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...
  share bootstrap ls`,
	}
	cmd.AddCommand(bootstrapAddCmd(g), bootstrapRmCmd(g), bootstrapLsCmd(g))
	return cmd
}

// bootstrapList reads the Bootstrap list of the config (the daemon's,
// when one runs).
func bootstrapList(cmd *cobra.Command) ([]string, error) {
	v, err := configGet(cmd.Context(), "Bootstrap")
	if err != nil {
		return nil, err
	}
	var l []string
	err = json.Unmarshal(v, &l)
	return l, err
}

// bootstrapSave writes the Bootstrap list of the config.
func bootstrapSave(cmd *cobra.Command, l []string) error {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return configSet(cmd.Context(), "Bootstrap", string(b))
}

// bootstrapAddCmd is `share bootstrap add`.
func bootstrapAddCmd(g *globals) *cobra.Command {
	add := &cobra.Command{
		Use:     "add MULTIADDR...",
		Short:   "Add bootstrap peers",
		Example: "  share bootstrap add /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if _, err := peer.AddrInfoFromString(a); err != nil {
					return errs.Errorf(errs.Invalid, "bootstrap add %q: %v (want /ip4/ADDR/tcp/PORT/p2p/ID)", a, err)
				}
			}
			l, err := bootstrapList(cmd)
			if err != nil {
				return err
			}
			for _, a := range args {
				if !slices.Contains(l, a) {
					l = append(l, a)
				}
			}
			if err := bootstrapSave(cmd, l); err != nil {
				return err
			}
			if g.json {
				return printAddrs(g, args)
			}
			return report(g, nil, "added %d bootstrap peer(s)", len(args))
		},
	}
	return add
}

// bootstrapRmCmd is `share bootstrap rm`.
func bootstrapRmCmd(g *globals) *cobra.Command {
	rm := &cobra.Command{
		Use:     "rm MULTIADDR...|--all",
		Short:   "Remove bootstrap peers",
		Example: "  share bootstrap rm --all",
		RunE: func(cmd *cobra.Command, args []string) error {
			all, _ := cmd.Flags().GetBool("all")
			if !all && len(args) == 0 {
				return errs.New(errs.Invalid, "bootstrap rm: name the peers to remove, or --all")
			}
			l, err := bootstrapList(cmd)
			if err != nil {
				return err
			}
			var keep, gone []string
			for _, a := range l {
				if !all && !slices.Contains(args, a) {
					keep = append(keep, a)
				} else {
					gone = append(gone, a)
				}
			}
			if !all && len(keep)+len(args) != len(l) {
				return errs.New(errs.NotFound, "bootstrap rm: not in the list: see 'share bootstrap ls'")
			}
			if err := bootstrapSave(cmd, keep); err != nil {
				return err
			}
			if g.json {
				return printAddrs(g, gone)
			}
			return report(g, nil, "removed %d bootstrap peer(s)", len(gone))
		},
	}
	rm.Flags().Bool("all", false, "remove every bootstrap peer")
	return rm
}

// bootstrapLsCmd is `share bootstrap ls`.
func bootstrapLsCmd(g *globals) *cobra.Command {
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List bootstrap peers",
		Example: "  share bootstrap ls",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := bootstrapList(cmd)
			if err != nil {
				return err
			}
			if g.json {
				return printAddrs(g, l)
			}
			for _, a := range l {
				fmt.Fprintln(g.stdout, a)
			}
			return nil
		},
	}
	return ls
}

// printAddrs prints bootstrap entries as --json lists them: one
// {"Addr": MULTIADDR} a line.
func printAddrs(g *globals, addrs []string) error {
	for _, a := range addrs {
		if err := printJSON(g.stdout, struct{ Addr string }{a}); err != nil {
			return err
		}
	}
	return nil
}
