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

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/internal/rawio"
	"github.com/share-p2p/share/node"
)

func catCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "cat CID[/PATH]...",
		Short: "Write the files with these CIDs or paths to standard output, one after another",
		Long: `Cat writes each file to standard output, in the order given (as kubo's
cat does). An argument is a CID or a path in a directory: CID/sub/file,
/ipfs/CID/sub/file.`,
		Example: "  share cat bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku > hello.txt\n  share cat bafyb4i.../sub/big.bin > big.bin\n  share cat part1-CID part2-CID > whole",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := parsePaths(args)
			if err != nil {
				return err
			}
			return withNode(func(n node.API) error {
				opts := node.FetchOptions{Timeout: timeout}
				out := catOutput(g, n)
				for _, p := range paths {
					c, err := n.Resolve(cmd.Context(), p, opts)
					if err == nil {
						err = out.cat(cmd.Context(), c, opts)
					}
					if err != nil {
						// The bytes before a failure (a damaged block) are
						// written out, so that the output ends where it does.
						out.flush()
						return err
					}
				}
				return out.flush()
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

// catWriter is where cat writes: into our stdout file by the daemon
// itself, or through one buffer for every file.
type catWriter struct {
	n  node.API
	fc fileCatter // set when the daemon writes into f
	f  *os.File
	w  *bufio.Writer
}

// catOutput returns the output of cat on g's stdout through n.
func catOutput(g *globals, n node.API) *catWriter {
	out := &catWriter{n: n}
	if f, ok := g.stdout.(*os.File); ok {
		// Local or through the daemon, which writes into f: a pipe gets
		// 1 MiB of buffer either way.
		rawio.GrowPipe(f)
		if fc, ok := n.(fileCatter); ok {
			out.fc, out.f = fc, f
			return out
		}
	}
	out.w = bufio.NewWriterSize(g.stdout, 1<<20)
	return out
}

// cat writes the file c.
func (o *catWriter) cat(ctx context.Context, c cid.Cid, opts node.FetchOptions) error {
	if o.fc != nil {
		_, err := o.fc.CatFile(ctx, c, o.f, opts)
		return err
	}
	_, err := o.n.Cat(ctx, c, o.w, opts)
	return err
}

// flush writes out what is buffered.
func (o *catWriter) flush() error {
	if o.w == nil {
		return nil
	}
	return o.w.Flush()
}

func getCmd(g *globals) *cobra.Command {
	var (
		out             string
		timeout         time.Duration
		noLinks, unsafe bool
	)
	cmd := &cobra.Command{
		Use:   "get CID[/PATH] [-o OUT]",
		Short: "Write the file or directory with this CID or path to disk",
		Long: `Get writes the file or directory with this CID, or at this path in a
directory (CID/sub/file, /ipfs/CID/sub/file), to OUT (default: in the
current directory, under the path's last name, or the CID for a bare CID,
as kubo's get does). The output appears only when it is complete.

Modes and modification times recorded by 'add --preserve-mode --preserve-mtime'
are restored: the permission bits (rwx), less the umask, never setuid, setgid
or sticky. Symlinks are written as they were added, except those whose target
is absolute or leads out of OUT (resolved from the link's directory, or has
".." after a name): each of those is left out with a line saying so, the rest
is written, and get exits 1. --allow-unsafe-links writes them too;
--no-symlinks writes no symlinks at all.`,
		Example: "  share get bafyb4igc6qmsqhjf2ewjiztd2wbkepkosktsu5w6uqcj3fgkdpa2e3zeaa -o video.mkv\n  share get /ipfs/bafyb4i.../photos/2024   # writes ./2024",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := parsePaths(args)
			if err != nil {
				return err
			}
			p := paths[0]
			if out == "" {
				out = p.Base()
			}
			if _, err := os.Lstat(out); err == nil {
				return errs.Errorf(errs.Exist, "get: %s already exists (choose another -o PATH or remove it)", out)
			}
			if err := checkOutputDir(out); err != nil {
				return err
			}
			return withNode(func(n node.API) error {
				c, err := n.Resolve(cmd.Context(), p, node.FetchOptions{Timeout: timeout})
				if err != nil {
					return err
				}
				rep := newFetchReport(g)
				defer rep.end()
				opts := node.GetOptions{FetchOptions: node.FetchOptions{Timeout: timeout, Progress: rep.progress}}
				switch {
				case noLinks:
					opts.Links = dag.NoLinks
				case unsafe:
					opts.Links = dag.AllLinks
				}
				opts.Refused = func(path, target, why string) {
					fmt.Fprintf(g.stderr, "share: symlink %s -> %s not written: %s (--allow-unsafe-links writes it)\n", displayName(path), displayName(target), why)
				}
				if err := n.Get(cmd.Context(), c, out, opts); err != nil {
					return err
				}
				rep.end()
				return rep.saved(c.String(), p.String(), out)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to write the file or directory (default: ./NAME, the path's last name or the CID)")
	cmd.Flags().BoolVar(&noLinks, "no-symlinks", false, "write no symlinks")
	cmd.Flags().BoolVar(&unsafe, "allow-unsafe-links", false, "write symlinks whose target is absolute or leads out of the output too")
	cmd.MarkFlagsMutuallyExclusive("no-symlinks", "allow-unsafe-links")
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
		Use:     "ls CID[/PATH]",
		Short:   "List the directory with this CID or path (fetched from the network if it is not here)",
		Example: "  share ls bafyb4icaeuc5uqz3b5ynfpaaagm2v2ewetp3fuutrc4vgna6ywu2wympke\n  share ls bafyb4icaeuc5uqz3b5ynfpaaagm2v2ewetp3fuutrc4vgna6ywu2wympke/photos\n  share ls --timeout 5s /ipfs/bafyb4icaeuc5uqz3b5ynfpaaagm2v2ewetp3fuutrc4vgna6ywu2wympke",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := parsePaths(args)
			if err != nil {
				return err
			}
			return withNode(func(n node.API) error {
				opts := node.FetchOptions{Timeout: timeout}
				c, err := n.Resolve(cmd.Context(), paths[0], opts)
				if err != nil {
					return err
				}
				entries, err := n.Ls(cmd.Context(), c, opts)
				if err != nil {
					return err
				}
				return printEntries(g, entries)
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", node.DefaultTimeout, "give up on a directory that is not here after this long")
	return cmd
}

// lsEntry is one entry of ls --json. Size is the content's bytes (a
// file's, a symlink target's); a directory has none: its size is not
// known without reading the tree under it.
type lsEntry struct {
	Name, Cid, Type string
	Size            *uint64 `json:",omitempty"`
	// Mode ("0755", octal) and Mtime (RFC 3339) are the metadata the
	// entry records, if any (add --preserve-mode, --preserve-mtime).
	Mode  string     `json:",omitempty"`
	Mtime *time.Time `json:",omitempty"`
}

// printEntries prints the entries of a directory: one JSON object a
// line, or CID, size ("-" for a directory) and name in columns.
func printEntries(g *globals, entries []node.Entry) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
	for _, e := range entries {
		dir := e.Type == "directory"
		switch {
		case g.json:
			v := lsEntry{Name: e.Name, Cid: e.Cid.String(), Type: e.Type, Mtime: e.Mtime}
			if e.Mode != nil {
				v.Mode = fmt.Sprintf("%04o", *e.Mode)
			}
			if !dir {
				v.Size = &e.Size
			}
			if err := printJSON(g.stdout, v); err != nil {
				return err
			}
		case g.quiet:
			fmt.Fprintln(tw, e.Cid)
		case dir:
			fmt.Fprintf(tw, "%s\t-\t%s/\n", e.Cid, displayName(e.Name))
		default:
			fmt.Fprintf(tw, "%s\t%d\t%s\n", e.Cid, e.Size, displayName(e.Name))
		}
	}
	return tw.Flush()
}
