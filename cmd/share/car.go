package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
)

func exportCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "export CID[/PATH]",
		Short: "Write the DAG with this CID or path as a CAR v1 file to standard output",
		Long: `Export writes every block of the DAG under CID (or under what the path
CID/sub/dir names), in a CAR v1 file whose root is that DAG's, to
standard output: a way to move content without a network ('share import'
reads it back, verifying every block).`,
		Example: "  share export bafyb4i... > holidays.car\n  share export bafyb4i.../2024 > 2024.car",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := parsePaths(args)
			if err != nil {
				return err
			}
			if f, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				return errs.Errorf(errs.Invalid, "export writes binary data: redirect it to a file (share export %s > file.car)", args[0])
			}
			return withNode(func(n node.API) error {
				opts := node.FetchOptions{Timeout: timeout}
				c, err := n.Resolve(cmd.Context(), paths[0], opts)
				if err != nil {
					return err
				}
				w := bufio.NewWriterSize(g.stdout, 1<<20)
				if err := n.Export(cmd.Context(), c, w, opts); err != nil {
					return err
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", node.DefaultTimeout, "when fetching, give up when nothing arrives for this long")
	return cmd
}

func importCmd(g *globals) *cobra.Command {
	var pinIt bool
	cmd := &cobra.Command{
		Use:   "import FILE.car",
		Short: "Store every block of a CAR v1 file and pin its roots",
		Long: `Import reads a CAR v1 file ("-" for standard input), verifies every block
against its CID, stores them, and pins the file's roots (once each DAG is
complete). It prints the roots.`,
		Example: "  share import holidays.car",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				defer f.Close()
				r = f
			}
			return withNode(func(n node.API) error {
				roots, err := n.Import(cmd.Context(), bufio.NewReaderSize(r, 1<<20), pinIt)
				if err != nil {
					return err
				}
				for _, c := range roots {
					if err := report(g, map[string]string{"Root": c.String()}, "imported %s", c); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&pinIt, "pin", true, "pin the roots")
	return cmd
}

func completionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Example: `  share completion bash > /etc/bash_completion.d/share
  share completion zsh > "${fpath[1]}/_share"
  share completion fish > ~/.config/fish/completions/share.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(g.stdout, true)
			case "zsh":
				return root.GenZshCompletion(g.stdout)
			case "fish":
				return root.GenFishCompletion(g.stdout, true)
			}
			return errs.Errorf(errs.Invalid, "completion: unknown shell %q (want bash, zsh or fish)", args[0])
		},
	}
}
