package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/node"
)

func catCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "cat CID",
		Short:   "Write the file with this CID to standard output",
		Example: "  share cat bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku > hello.txt",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCID(args[0])
			if err != nil {
				return err
			}
			return withNode(func(n node.API) error {
				w := bufio.NewWriterSize(g.stdout, 1<<20)
				if _, err := n.Cat(cmd.Context(), c, w); err != nil {
					return err
				}
				return w.Flush()
			})
		},
	}
}

func getCmd(g *globals) *cobra.Command {
	var (
		out     string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "get CID [-o PATH]",
		Short: "Write the file or directory with this CID to disk",
		Long: `Get writes the file or directory with this CID to PATH (default: the CID,
in the current directory). The output appears only when it is complete.`,
		Example: "  share get bafyb4igc6qmsqhjf2ewjiztd2wbkepkosktsu5w6uqcj3fgkdpa2e3zeaa -o video.mkv",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCID(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = c.String()
			}
			if _, err := os.Lstat(out); err == nil {
				return fmt.Errorf("get: %s already exists (choose another -o PATH or remove it)", out)
			}
			return withNode(func(n node.API) error {
				var progress func(int64)
				if g.showProgress() {
					bar := newBar(g.stderr, -1, "getting")
					defer bar.Exit()
					progress = func(done int64) { bar.Set64(done) }
				}
				if err := n.Get(cmd.Context(), c, out, progress); err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, map[string]string{"Cid": c.String(), "Path": out})
				}
				if !g.quiet {
					abs, _ := filepath.Abs(out)
					fmt.Fprintf(g.stderr, "saved %s to %s\n", c, abs)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to write the file or directory (default: ./CID)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up when nothing arrives for this long")
	return cmd
}

func lsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls CID",
		Short:   "List the directory with this CID",
		Example: "  share ls bafyb4icaeuc5uqz3b5ynfpaaagm2v2ewetp3fuutrc4vgna6ywu2wympke",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCID(args[0])
			if err != nil {
				return err
			}
			return withNode(func(n node.API) error {
				entries, err := n.Ls(cmd.Context(), c)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
				for _, e := range entries {
					switch {
					case g.json:
						printJSON(g.stdout, struct {
							Name, Cid, Type string
							Size            uint64
						}{e.Name, e.Cid.String(), e.Type, e.Size})
					case g.quiet:
						fmt.Fprintln(tw, e.Cid)
					default:
						name := e.Name
						if e.Type == "directory" {
							name += "/"
						}
						fmt.Fprintf(tw, "%s\t%d\t%s\n", e.Cid, e.Size, name)
					}
				}
				return tw.Flush()
			})
		},
	}
}
