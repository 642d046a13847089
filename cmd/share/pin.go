package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/pin"
)

func pinCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Keep content: add, remove, list and verify pins",
		Long:  "Pinned content is never removed by gc. Pins are recursive (the whole DAG) unless --direct.",
		Example: `  share pin add --name photos bafyb4i...
  share pin ls`,
	}
	cmd.AddCommand(pinAddCmd(g), pinRmCmd(g), pinLsCmd(g), pinVerifyCmd(g))
	return cmd
}

// pinAddCmd is `share pin add`: fetch what is missing, then pin.
func pinAddCmd(g *globals) *cobra.Command {
	var (
		direct  bool
		name    string
		timeout time.Duration
	)
	add := &cobra.Command{
		Use:   "add CID[/PATH]...",
		Short: "Pin content (recursive by default)",
		Long: `Pin add fetches what is missing of each DAG, checks it is complete, and
pins it. A path (CID/sub/dir, /ipfs/CID/sub/dir) pins the CID it names,
which it prints, as kubo does.`,
		Example: "  share pin add --name holidays bafyb4icaeuc5uqz3b5ynfpaaagm2v2ewetp3fuutrc4vgna6ywu2wympke\n  share pin add bafyb4icaeuc5uqz3b5ynfpaaagm2v2ewetp3fuutrc4vgna6ywu2wympke/2024",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mode := pin.Recursive
			if direct {
				mode = pin.Direct
			}
			return forPaths(cmd.Context(), args, timeout, func(n node.API, c cidArg) error {
				opts := node.FetchOptions{Timeout: timeout}
				if g.showProgress() {
					bar := newBar(g.stderr, -1, "pinning "+c.s)
					defer endBar(bar)
					opts.Progress = func(p node.Progress) { bar.Set64(p.Bytes) }
				}
				if err := n.PinAdd(cmd.Context(), c.c, mode, name, opts); err != nil {
					return err
				}
				return report(g, map[string]string{"Cid": c.s, "Mode": string(mode)}, "pinned %s %s", c.s, mode)
			})
		},
	}
	add.Flags().BoolVar(&direct, "direct", false, "pin only this block, not what it links to")
	add.Flags().StringVar(&name, "name", "", "a name for the pin")
	add.Flags().DurationVar(&timeout, "timeout", node.DefaultTimeout, "when fetching, give up when nothing arrives for this long")
	return add
}

// pinRmCmd is `share pin rm`.
func pinRmCmd(g *globals) *cobra.Command {
	rm := &cobra.Command{
		Use:     "rm CID[/PATH]...",
		Short:   "Unpin content (gc may then remove it)",
		Example: "  share pin rm bafyb4icaeuc5uqz3b5ynfpaaagm2v2ewetp3fuutrc4vgna6ywu2wympke",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forPaths(cmd.Context(), args, node.DefaultTimeout, func(n node.API, c cidArg) error {
				if err := n.PinRm(cmd.Context(), c.c); err != nil {
					return err
				}
				return report(g, map[string]string{"Cid": c.s}, "unpinned %s", c.s)
			})
		},
	}
	return rm
}

// pinLsCmd is `share pin ls`.
func pinLsCmd(g *globals) *cobra.Command {
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List pins",
		Example: "  share pin ls --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNode(func(n node.API) error {
				pins, err := n.PinLs(cmd.Context())
				if err != nil {
					return err
				}
				for _, p := range pins {
					switch {
					case g.json:
						printJSON(g.stdout, map[string]string{"Cid": p.Cid.String(), "Mode": string(p.Mode), "Name": p.Name})
					case g.quiet:
						fmt.Fprintln(g.stdout, p.Cid)
					default:
						line := fmt.Sprintf("%s %s", p.Cid, p.Mode)
						if p.Name != "" {
							line += " " + displayName(p.Name)
						}
						fmt.Fprintln(g.stdout, line)
					}
				}
				return nil
			})
		},
	}
	return ls
}

// pinVerifyCmd is `share pin verify`.
func pinVerifyCmd(g *globals) *cobra.Command {
	verify := &cobra.Command{
		Use:     "verify",
		Short:   "Check that every pin's content is present and intact",
		Example: "  share pin verify",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNode(func(n node.API) error {
				bad, err := n.PinVerify(cmd.Context(), func(p pin.Pin, err error) { printPinVerified(g, p, err) })
				if err != nil {
					return err
				}
				if bad > 0 {
					return errs.Errorf(errs.Corrupt, "pin verify: %d pin(s) incomplete or corrupt", bad)
				}
				return nil
			})
		},
	}
	return verify
}

// pinVerified is one pin's line of pin verify --json.
type pinVerified struct {
	Cid   string
	Ok    bool
	Error string `json:",omitempty"` // what is wrong, when not Ok
}

// printPinVerified prints what pin verify found of p: err is nil when it
// is intact.
func printPinVerified(g *globals, p pin.Pin, err error) {
	v := pinVerified{Cid: p.Cid.String(), Ok: err == nil}
	if err != nil {
		v.Error = joinLines(err.Error())
	}
	switch {
	case g.json:
		printJSON(g.stdout, v)
	case g.quiet && v.Ok:
	case v.Ok:
		fmt.Fprintf(g.stdout, "%s ok\n", v.Cid)
	default:
		fmt.Fprintf(g.stdout, "%s %s\n", v.Cid, v.Error)
	}
}

// cidArg is an argument and the CID it resolved to.
type cidArg struct {
	s string // the CID, as printed
	c cid.Cid
}

// forPaths parses every argument first (so a typo changes nothing), then
// with one open node resolves each in turn (fetching the directories on
// the way, giving up after timeout without progress) and runs fn on the
// CID it names.
func forPaths(ctx context.Context, args []string, timeout time.Duration, fn func(n node.API, c cidArg) error) error {
	paths, err := parsePaths(args)
	if err != nil {
		return err
	}
	return withNode(func(n node.API) error {
		for _, p := range paths {
			c, err := n.Resolve(ctx, p, node.FetchOptions{Timeout: timeout})
			if err != nil {
				return err
			}
			if err := fn(n, cidArg{c.String(), c}); err != nil {
				return err
			}
		}
		return nil
	})
}

// report prints v as JSON or the formatted line, unless quiet.
func report(g *globals, v any, format string, a ...any) error {
	if g.json {
		return printJSON(g.stdout, v)
	}
	if !g.quiet {
		_, err := fmt.Fprintf(g.stdout, format+"\n", a...)
		return err
	}
	return nil
}
