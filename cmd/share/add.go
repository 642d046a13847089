package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/node"
)

func addCmd(g *globals) *cobra.Command {
	var (
		opts     node.AddOptions
		onlyRoot bool
		pinIt    bool
	)
	cmd := &cobra.Command{
		Use:   "add [-r] PATH...",
		Short: "Add files or directories to the repository and print their CIDs",
		Long: `Add chunks each file (1 MiB chunks by default), hashes every chunk with
BLAKE3, stores the blocks and pins the result. It prints "added CID NAME"
for every file and directory. PATH "-" reads standard input.`,
		Example: `  share add photo.jpg
  share add -r holidays/
  tar c dir | share add -Q -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.NoPin = !pinIt
			return runAdd(cmd, g, args, opts, onlyRoot)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Recursive, "recursive", "r", false, "add directories recursively")
	f.BoolVarP(&onlyRoot, "quieter", "Q", false, "print only the root CID of each PATH")
	f.StringVar(&opts.Chunker, "chunker", "size-1048576", "chunking algorithm: size-N (fixed N-byte chunks, N <= 4 MiB)")
	f.BoolVar(&pinIt, "pin", true, "pin what is added (--pin=false leaves it to gc)")
	f.StringVar(&opts.PinName, "name", "", "a name for the pin")
	return cmd
}

func runAdd(cmd *cobra.Command, g *globals, paths []string, opts node.AddOptions, onlyRoot bool) error {
	// The importer counts bytes per PATH; base keeps the bar cumulative.
	var base, last int64
	if g.showProgress() {
		bar := newBar(g.stderr, totalSize(paths), "adding")
		defer endBar(bar)
		opts.Progress = func(done int64) { last = done; bar.Set64(base + done) }
	}
	return withNode(func(n node.API) error {
		for _, p := range paths {
			var r io.Reader
			if p == "-" {
				r = os.Stdin
			}
			root, err := n.Add(cmd.Context(), p, r, opts, func(a node.Added) {
				if !onlyRoot {
					printAdded(g, a)
				}
			})
			if err != nil {
				return err
			}
			base, last = base+last, 0
			if onlyRoot {
				if g.json {
					printJSON(g.stdout, map[string]string{"Cid": root.String()})
				} else {
					fmt.Fprintln(g.stdout, root)
				}
			}
		}
		if _, local := n.(*node.Node); local && !g.quiet && !g.json && !onlyRoot {
			fmt.Fprintln(g.stderr, "share: stored locally; no daemon runs, so nobody can fetch it until 'share daemon' runs here")
		}
		return nil
	})
}

func printAdded(g *globals, a node.Added) {
	switch {
	case g.json:
		printJSON(g.stdout, struct {
			Name string
			Cid  string
			Size uint64
		}{a.Name, a.Cid.String(), a.Size})
	case g.quiet:
		fmt.Fprintln(g.stdout, a.Cid)
	default:
		fmt.Fprintf(g.stdout, "added %s %s\n", a.Cid, a.Name)
	}
}

// totalSize sums the sizes of the regular files under paths (-1 if unknown).
func totalSize(paths []string) int64 {
	var total int64
	for _, p := range paths {
		if p == "-" {
			return -1
		}
		filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					total += fi.Size()
				}
			}
			return nil
		})
	}
	return total
}
