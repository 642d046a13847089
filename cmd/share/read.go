package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/internal/rawio"
	"github.com/share-p2p/share/node"
)

func catCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
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
				opts := node.FetchOptions{Timeout: timeout}
				if f, ok := g.stdout.(*os.File); ok {
					// Local or through the daemon, which writes into f:
					// a pipe gets 1 MiB of buffer either way.
					rawio.GrowPipe(f)
					if fc, ok := n.(fileCatter); ok {
						// The daemon writes into our stdout itself.
						_, err := fc.CatFile(cmd.Context(), c, f, opts)
						return err
					}
				}
				w := bufio.NewWriterSize(g.stdout, 1<<20)
				_, err := n.Cat(cmd.Context(), c, w, opts)
				// The bytes before a failure (a damaged block) are
				// written out, so that the output ends where it does.
				if ferr := w.Flush(); err == nil {
					err = ferr
				}
				return err
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", node.DefaultTimeout, "give up when nothing arrives for this long")
	return cmd
}

// fileCatter is a node that can write a file into an open file of ours
// (api.Client: the daemon writes into the descriptor it is sent).
type fileCatter interface {
	CatFile(ctx context.Context, c cid.Cid, f *os.File, opts node.FetchOptions) (int64, error)
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
				return errs.Errorf(errs.Exist, "get: %s already exists (choose another -o PATH or remove it)", out)
			}
			if err := checkOutputDir(out); err != nil {
				return err
			}
			return withNode(func(n node.API) error {
				rep := newFetchReport(g)
				defer rep.end()
				opts := node.FetchOptions{Timeout: timeout, Progress: rep.progress}
				if err := n.Get(cmd.Context(), c, out, opts); err != nil {
					return err
				}
				rep.end()
				return rep.saved(c.String(), out)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to write the file or directory (default: ./CID)")
	cmd.Flags().DurationVar(&timeout, "timeout", node.DefaultTimeout, "give up when nothing arrives for this long")
	return cmd
}

// checkOutputDir fails at once, before anything is fetched, when the
// directory that out is to be written in does not exist.
func checkOutputDir(out string) error {
	dir := filepath.Dir(out)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errs.Errorf(errs.NotFound, "get: cannot write %s: directory %s does not exist", out, dir)
	case err == nil && !fi.IsDir():
		return errs.Errorf(errs.Invalid, "get: cannot write %s: %s is not a directory", out, dir)
	}
	return nil // any other trouble is the write's to report
}

func lsCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "ls CID",
		Short:   "List the directory with this CID (fetched from the network if it is not here)",
		Example: "  share ls bafyb4icaeuc5uqz3b5ynfpaaagm2v2ewetp3fuutrc4vgna6ywu2wympke\n  share ls --timeout 5s bafyb4icaeuc5uqz3b5ynfpaaagm2v2ewetp3fuutrc4vgna6ywu2wympke",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCID(args[0])
			if err != nil {
				return err
			}
			return withNode(func(n node.API) error {
				entries, err := n.Ls(cmd.Context(), c, node.FetchOptions{Timeout: timeout})
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
	cmd.Flags().DurationVar(&timeout, "timeout", node.DefaultTimeout, "give up on a directory that is not here after this long")
	return cmd
}
