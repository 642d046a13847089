package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/gc"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/repo"
)

func initCmd(g *globals) *cobra.Command {
	var private bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the repository (optional: every command does it on first use)",
		Long: `Init creates $SHARE_PATH (default ~/.share) with a default config.json
and a new node identity. An existing repository is left as it is.

--private also creates swarm.key, a pre-shared key that makes a private
network: nodes without the same key cannot connect. Copy the file to the
other nodes' repositories (it is a secret: keep it mode 0600).`,
		Example: `  SHARE_PATH=/data/share share init
  share init --private && scp ~/.share/swarm.key other:.share/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath()
			if err != nil {
				return err
			}
			created, err := repo.Init(p)
			if err != nil {
				return err
			}
			if private {
				kp := filepath.Join(p, repo.SwarmKeyFile)
				if err := repo.GenerateSwarmKey(kp); err != nil {
					return err
				}
				if !g.quiet && !g.json {
					fmt.Fprintf(g.stderr, "created %s: copy it to every node of the private network\n", kp)
				}
			}
			id, err := repo.LoadIdentity(p)
			if err != nil {
				return err
			}
			msg := "initialised"
			if !created {
				msg = "already initialised"
			}
			return report(g, map[string]string{"Path": p, "ID": id.ID.String()}, "%s repository %s\npeer identity: %s", msg, p, id.ID)
		},
	}
	cmd.Flags().BoolVar(&private, "private", false, "create swarm.key: a private network only nodes with the key can join")
	return cmd
}

func gcCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "gc",
		Short:   "Remove every block that no pin reaches",
		Example: "  share gc",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNode(func(n node.API) error {
				res, err := n.GC(cmd.Context(), func(w gc.Waiting) { fmt.Fprintln(g.stderr, w) })
				if err != nil {
					return err
				}
				return report(g, map[string]int64{"Blocks": int64(res.Blocks), "Bytes": res.Bytes},
					"removed %d blocks, freed %s", res.Blocks, humanBytes(res.Bytes))
			})
		},
	}
}

func repoCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Short: "Inspect the repository: stat, verify", Example: "  share repo stat\n  share repo verify"}
	stat := &cobra.Command{
		Use:     "stat",
		Short:   "Print the repository's size, block count and pin count",
		Example: "  share repo stat --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNode(func(n node.API) error {
				st, err := n.Stat(cmd.Context())
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, st)
				}
				fmt.Fprintf(g.stdout, "path:       %s\nblocks:     %d\nbytes:      %d (%s)\non disk:    %s\nstorage max: %s\npins:       %d\n",
					st.Path, st.Blocks, st.Bytes, humanBytes(st.Bytes), humanBytes(st.DiskUsage), humanBytes(st.StorageMax), st.Pins)
				return nil
			})
		},
	}
	verify := &cobra.Command{
		Use:     "verify",
		Short:   "Re-hash every block and check that every pin's DAG is complete",
		Example: "  share repo verify",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNode(func(n node.API) error {
				res, err := n.RepoVerify(cmd.Context(), nil)
				if err != nil {
					return err
				}
				return reportVerify(g, res)
			})
		},
	}
	cmd.AddCommand(stat, verify)
	return cmd
}

// reportVerify prints what repo verify found: the result as JSON, or one
// line on stderr per corrupt block, naming the pins it breaks, and per
// other bad pin. Anything wrong is an error (exit status 1).
func reportVerify(g *globals, res node.VerifyResult) error {
	if g.json {
		if err := printJSON(g.stdout, res); err != nil {
			return err
		}
	} else {
		printVerifyProblems(g.stderr, res)
	}
	if len(res.Corrupt)+len(res.BadPins) > 0 {
		kind := errs.Other
		if len(res.Corrupt) > 0 {
			kind = errs.Corrupt
		}
		return errs.Errorf(kind, "repo verify: %d corrupt block(s), %d bad pin(s)", len(res.Corrupt), len(res.BadPins))
	}
	if !g.json && !g.quiet {
		fmt.Fprintf(g.stdout, "verified %d blocks: all intact, every pin complete\n", res.Blocks)
	}
	return nil
}

// printVerifyProblems writes a "share: " line per corrupt block, with the
// pins it breaks, and per bad pin that no such line named (an incomplete
// one).
func printVerifyProblems(w io.Writer, res node.VerifyResult) {
	named := make(map[string]bool)
	for _, c := range res.Corrupt {
		pins := res.Breaks[c]
		switch len(pins) {
		case 0:
			fmt.Fprintf(w, "share: block %s is corrupt; no pin holds it\n", c)
		case 1:
			fmt.Fprintf(w, "share: block %s is corrupt; it breaks pin %s\n", c, pins[0])
		default:
			fmt.Fprintf(w, "share: block %s is corrupt; it breaks pins %s\n", c, strings.Join(pins, ", "))
		}
		for _, p := range pins {
			named[p] = true
		}
	}
	for _, p := range res.BadPins {
		if c, _, _ := strings.Cut(p, ":"); !named[c] {
			fmt.Fprintf(w, "share: bad pin %s\n", joinLines(p))
		}
	}
}

func configCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change config.json: get, set, show",
		Long:  "Keys are dotted paths such as Addresses.Listen; 'share config show' prints them all.",
		Example: `  share config show
  share config set Datastore.StorageMax 50GB`,
	}
	load := func() (*repo.Config, string, error) {
		p, err := repoPath()
		if err != nil {
			return nil, "", err
		}
		if _, err := repo.Init(p); err != nil {
			return nil, "", err
		}
		c, err := repo.LoadConfig(filepath.Join(p, repo.ConfigFile))
		return c, p, err
	}
	get := &cobra.Command{
		Use:     "get KEY",
		Short:   "Print the JSON value of KEY",
		Example: "  share config get Addresses.Listen",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := configGet(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printConfigValue(g, args[0], v)
		},
	}
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Set KEY to VALUE (JSON where it parses as JSON, a string otherwise)",
		Long: `Set changes config.json. While a daemon runs, it goes through the daemon,
and most keys take effect when the daemon restarts (new Bootstrap peers are
dialled at once).`,
		Example: `  share config set Discovery.MDNS false
  share config set Addresses.Listen '["/ip4/0.0.0.0/tcp/4001"]'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := configSet(cmd.Context(), args[0], args[1]); err != nil || !g.json {
				return err
			}
			// What was stored: VALUE as JSON, or as the string it was.
			v, err := configGet(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printConfigValue(g, args[0], v)
		},
	}
	show := &cobra.Command{
		Use:     "show",
		Short:   "Print every key and its value",
		Example: "  share config show",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := load()
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.stdout, c)
			}
			keys := c.Keys()
			sort.Strings(keys)
			for _, k := range keys {
				v, _ := c.Get(k)
				fmt.Fprintf(g.stdout, "%-22s %s\n", k, strings.TrimSpace(string(v)))
			}
			return nil
		},
	}
	cmd.AddCommand(get, set, show)
	return cmd
}

// printConfigValue prints a key's value: the JSON alone, or with --json
// the object {"Key": KEY, "Value": VALUE}.
func printConfigValue(g *globals, key string, v json.RawMessage) error {
	if g.json {
		return printJSON(g.stdout, struct {
			Key   string
			Value json.RawMessage
		}{key, v})
	}
	_, err := fmt.Fprintln(g.stdout, strings.TrimSpace(string(v)))
	return err
}

// configGet reads a key from the running daemon, or from config.json.
func configGet(ctx context.Context, key string) (json.RawMessage, error) {
	if c, err := daemonClient(); err == nil {
		defer c.Close()
		return c.ConfigGet(ctx, key)
	}
	p, err := repoPath()
	if err != nil {
		return nil, err
	}
	if _, err := repo.Init(p); err != nil {
		return nil, err
	}
	cfg, err := repo.LoadConfig(filepath.Join(p, repo.ConfigFile))
	if err != nil {
		return nil, err
	}
	return cfg.Get(key)
}

// configSet sets a key through the running daemon, or in config.json
// under the repository lock.
func configSet(ctx context.Context, key, value string) error {
	if c, err := daemonClient(); err == nil {
		defer c.Close()
		return c.ConfigSet(ctx, key, value)
	}
	p, err := repoPath()
	if err != nil {
		return err
	}
	if _, err := repo.Init(p); err != nil {
		return err
	}
	lock, err := repo.Lock(p)
	if err != nil {
		return err
	}
	defer lock.Close()
	cfg, err := repo.LoadConfig(filepath.Join(p, repo.ConfigFile))
	if err != nil {
		return err
	}
	nc, err := cfg.Set(key, value)
	if err != nil {
		return err
	}
	return repo.WriteConfig(filepath.Join(p, repo.ConfigFile), nc)
}

func idCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "id",
		Short:   "Print this node's PeerID and, while the daemon runs, its addresses and reachability",
		Example: "  share id --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := localID()
			if c, derr := daemonClient(); derr == nil {
				defer c.Close()
				info, err = c.ID(cmd.Context())
			}
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.stdout, info)
			}
			fmt.Fprintln(g.stdout, info.ID)
			for _, a := range info.Addresses {
				fmt.Fprintln(g.stdout, a)
			}
			printReachability(g, info)
			return nil
		},
	}
}

// printReachability says whether the internet can reach this node, and
// at which addresses (AutoNAT's verdict; the daemon's only).
func printReachability(g *globals, info node.IDInfo) {
	fmt.Fprintf(g.stdout, "reachability: %s\n", info.Reachability)
	for _, a := range info.PublicAddresses {
		fmt.Fprintf(g.stdout, "public address: %s\n", a)
	}
	for _, a := range info.ObservedAddresses {
		fmt.Fprintf(g.stdout, "observed address: %s\n", a)
	}
}

// localID reads the identity without opening the database, so it works
// while another command holds the repository.
func localID() (node.IDInfo, error) {
	p, err := repoPath()
	if err != nil {
		return node.IDInfo{}, err
	}
	if _, err := repo.Init(p); err != nil {
		return node.IDInfo{}, err
	}
	id, err := repo.LoadIdentity(p)
	if err != nil {
		return node.IDInfo{}, err
	}
	return node.IDInfo{ID: id.ID.String(), Addresses: []string{}, Reachability: "unknown",
		PublicAddresses: []string{}, ObservedAddresses: []string{}}, nil
}
