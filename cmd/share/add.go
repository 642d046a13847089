package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/node"
)

func addCmd(g *globals) *cobra.Command {
	var (
		opts       node.AddOptions
		onlyRoot   bool
		pinIt      bool
		cidVersion int
		rawLeaves  bool
	)
	cmd := &cobra.Command{
		Use:   "add [-r] PATH...",
		Short: "Add files or directories to the repository and print their CIDs",
		Long: `Add chunks each file (1 MiB chunks by default), hashes every chunk with
BLAKE3, stores the blocks and pins the result. It prints "added CID NAME"
for every file and directory. PATH "-" reads standard input.

--cid-version, --hash and --raw-leaves are kubo's flags, with kubo's rules:
with them share computes the CIDs kubo computes. --cid-version 0 gives kubo's
default CIDs (Qm..., sha2-256, dag-pb leaves, 256 KiB chunks unless
--chunker says otherwise); CIDv1 turns raw leaves on unless
--raw-leaves=false.

Modes and modification times are not kept unless --preserve-mode and
--preserve-mtime say so (kubo's flags, with kubo's CIDs): then every file and
directory records its permissions, and every file, directory and symlink its
modification time, in UnixFS 1.5 metadata, which 'share get' restores. Metadata
turns raw leaves off, as kubo does (--raw-leaves with it is an error).`,
		Example: `  share add photo.jpg
  share add -r holidays/
  tar c dir | share add -Q -
  share add --cid-version 0 photo.jpg     # the CID kubo's ipfs add gives
  share add --cid-version 1 --hash sha2-256 --chunker size-262144 photo.jpg
  share add -r --preserve-mode --preserve-mtime tools/   # keeps the executable bits and times`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.NoPin = !pinIt
			if err := formatFlags(cmd, &opts.Format, cidVersion, rawLeaves); err != nil {
				return usageError(cmd, err)
			}
			return runAdd(cmd, g, args, opts, onlyRoot)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Recursive, "recursive", "r", false, "add directories recursively")
	f.BoolVarP(&onlyRoot, "quieter", "Q", false, "print only the root CID of each PATH")
	f.StringVar(&opts.Chunker, "chunker", "", "chunking algorithm: size-N (fixed N-byte chunks, N <= 4 MiB); default size-1048576, or kubo's size-262144 with --cid-version 0")
	f.IntVar(&cidVersion, "cid-version", 1, "CID version, 0 (kubo's default: implies --hash sha2-256 --raw-leaves=false) or 1")
	f.StringVar(&opts.Format.Hash, "hash", "", "hash function: blake3 (the default) or sha2-256 (implied by --cid-version 0)")
	f.BoolVar(&rawLeaves, "raw-leaves", true, "store chunks as raw blocks, not dag-pb nodes (default false with --cid-version 0 or metadata)")
	f.BoolVar(&opts.Format.PreserveMode, "preserve-mode", false, "record each file's and directory's permissions (UnixFS 1.5 mode, as kubo)")
	f.BoolVar(&opts.Format.PreserveMtime, "preserve-mtime", false, "record each file's, directory's and symlink's modification time (UnixFS 1.5 mtime, as kubo)")
	f.BoolVar(&pinIt, "pin", true, "pin what is added (--pin=false leaves it to gc)")
	f.StringVar(&opts.PinName, "name", "", "a name for the pin")
	return cmd
}

// formatFlags sets f from the format flags given on the command line and
// checks them by kubo's rules, so that a contradiction is a usage error
// before anything is read.
func formatFlags(cmd *cobra.Command, f *dag.FormatOptions, cidVersion int, rawLeaves bool) error {
	if cmd.Flags().Changed("cid-version") {
		f.CIDVersion = &cidVersion
	}
	if cmd.Flags().Changed("raw-leaves") {
		f.RawLeaves = &rawLeaves
	}
	_, err := f.Format()
	return err
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
		fmt.Fprintf(g.stdout, "added %s %s\n", a.Cid, displayName(a.Name))
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
