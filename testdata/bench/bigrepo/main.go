// Command bigrepo fills a repository with many pinned files, for
// bigrepo.sh: -pins files of 8-12 KiB of seeded random bytes, each chunked
// in 1 KiB raw leaves under one dag-pb root (about 11 blocks a file, so
// 100 000 pins make about 1 100 000 blocks), each root pinned. Blocks go
// through one Batch and pins through AddMany, committed every 10 000
// files, so building takes minutes. Run by hand (bigrepo.sh runs it).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"time"

	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/pin"
)

func main() {
	path := flag.String("repo", "", "repository (made by share init)")
	pins := flag.Int("pins", 100000, "files to add and pin")
	seed := flag.Uint64("seed", 1, "seed of the files' bytes")
	prof := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bigrepo:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := build(context.Background(), *path, *pins, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "bigrepo:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

const perCommit = 10000

func build(ctx context.Context, path string, pins int, seed uint64) error {
	n, err := node.Open(path)
	if err != nil {
		return err
	}
	defer n.Close()
	ch, err := chunker.Parse("size-1024")
	if err != nil {
		return err
	}
	opts := dag.ImportOptions{Chunker: ch}
	rng := rand.New(rand.NewChaCha8(seedBytes(seed)))
	buf := make([]byte, 12<<10)
	batch := n.Blocks.NewBatch()
	defer batch.Close()
	var todo []pin.Pin
	t0 := time.Now()
	for i := range pins {
		data := buf[:8<<10+rng.IntN(4<<10+1)]
		fill(rng, data)
		root, _, err := dag.ImportFile(ctx, bytes.NewReader(data), batch, opts)
		if err != nil {
			return err
		}
		todo = append(todo, pin.Pin{Cid: root, Mode: pin.Recursive})
		if len(todo) == perCommit || i == pins-1 {
			if err := batch.Commit(ctx); err != nil {
				return err
			}
			if err := n.Pins.AddMany(ctx, todo); err != nil {
				return err
			}
			todo = todo[:0]
			fmt.Fprintf(os.Stderr, "bigrepo: %d pins in %.0f s\n", i+1, time.Since(t0).Seconds())
		}
	}
	return nil
}

func seedBytes(seed uint64) (s [32]byte) {
	for i := range 4 {
		for j := range 8 {
			s[i*8+j] = byte(seed >> (8 * j))
		}
		seed = seed*6364136223846793005 + 1442695040888963407
	}
	return s
}

func fill(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}
