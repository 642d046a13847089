package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/pin"
)

func openTest(t *testing.T) *Node {
	t.Helper()
	n, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestGCConcurrentWithAdds hammers gc while several goroutines add and pin
// files: every finished add must stay complete and readable, and at the end
// the repository verifies.
func TestGCConcurrentWithAdds(t *testing.T) {
	n := openTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var stop atomic.Bool
	var gcRuns atomic.Int64
	gcDone := make(chan error, 1)
	go func() {
		for !stop.Load() {
			if _, err := n.GC(ctx, nil); err != nil {
				gcDone <- err
				return
			}
			gcRuns.Add(1)
		}
		gcDone <- nil
	}()

	const adders, perAdder = 4, 12
	var wg sync.WaitGroup
	errs := make(chan error, adders)
	for a := 0; a < adders; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perAdder; i++ {
				data := make([]byte, 64<<10+i*40000)
				rand.Read(data)
				opts := AddOptions{Chunker: "size-16384", NoPin: i%3 == 2}
				c, err := n.Add(ctx, "mem", bytes.NewReader(data), opts, nil)
				if err != nil {
					errs <- err
					return
				}
				if opts.NoPin {
					continue // gc may take it; that is allowed
				}
				var buf bytes.Buffer
				if _, err := n.Cat(ctx, c, &buf, FetchOptions{}); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf.Bytes(), data) {
					errs <- errMismatch
					return
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	if err := <-gcDone; err != nil {
		t.Fatalf("gc: %v", err)
	}
	close(errs)
	for err := range errs {
		t.Fatalf("add/cat during gc: %v", err)
	}
	if gcRuns.Load() < 2 {
		t.Fatalf("gc ran only %d times: no concurrency tested", gcRuns.Load())
	}
	// A last gc, then everything pinned must be complete.
	if _, err := n.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	res, err := n.RepoVerify(ctx, nil)
	if err != nil || len(res.Corrupt)+len(res.BadPins) > 0 {
		t.Fatalf("verify after hammering: %+v %v", res, err)
	}
	pins, _ := n.Pins.List(ctx)
	if len(pins) != adders*(perAdder-perAdder/3) {
		t.Fatalf("%d pins, want %d", len(pins), adders*(perAdder-perAdder/3))
	}
	t.Logf("gc ran %d times during %d adds", gcRuns.Load(), adders*perAdder)
}

var errMismatch = bytesMismatch{}

type bytesMismatch struct{}

func (bytesMismatch) Error() string { return "read back different bytes" }

func TestPinAddRequiresContent(t *testing.T) {
	n := openTest(t)
	ctx := context.Background()
	c, err := n.Add(ctx, "x", bytes.NewReader(make([]byte, 300000)), AddOptions{Chunker: "size-65536", NoPin: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PinAdd(ctx, c, pin.Recursive, "x", FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Pins.Get(c); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptBlock replaces a stored leaf with other bytes: cat, get,
// pin verify and repo verify must all name the bad block, and cat must
// write nothing wrong.
func TestCorruptBlock(t *testing.T) {
	n := openTest(t)
	ctx := context.Background()
	data := make([]byte, 5*65536)
	rand.Read(data)
	root, err := n.Add(ctx, "f", bytes.NewReader(data), AddOptions{Chunker: "size-65536"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The third leaf, by walking the DAG.
	var leaves []cid.Cid
	dag.Walk(ctx, n.Blocks, root, dag.WalkOptions{}, func(c cid.Cid) error {
		if c.Prefix().Codec == cid.Raw {
			leaves = append(leaves, c)
		}
		return nil
	})
	if len(leaves) != 5 {
		t.Fatalf("%d leaves, want 5", len(leaves))
	}
	bad := leaves[2]
	if _, _, err := n.Blocks.Delete(ctx, []multihash.Multihash{bad.Hash()}); err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Clone(data[2*65536 : 3*65536])
	garbage[100] ^= 1
	if err := n.Blocks.Put(ctx, bad, garbage); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	_, err = n.Cat(ctx, root, &out, FetchOptions{})
	if !errors.Is(err, dag.ErrHashMismatch) || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("cat of corrupt DAG: %v, want hash mismatch naming %s", err, bad)
	}
	if !bytes.Equal(out.Bytes(), data[:out.Len()]) || out.Len() > 2*65536 {
		t.Fatalf("cat wrote %d bytes, some past the corrupt block or wrong", out.Len())
	}
	if err := n.Get(ctx, root, t.TempDir()+"/out", GetOptions{}); !errors.Is(err, dag.ErrHashMismatch) {
		t.Fatalf("get of corrupt DAG: %v", err)
	}
	res, err := n.RepoVerify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Corrupt) != 1 || !strings.Contains(res.Corrupt[0], cid.NewCidV1(cid.Raw, bad.Hash()).String()) || len(res.BadPins) != 1 {
		t.Fatalf("repo verify = %+v, want the corrupt block and its pin", res)
	}
}

// TestAutoGC: over StorageMax, auto-gc frees unpinned blocks down to 90%
// of it and never touches pins.
func TestAutoGC(t *testing.T) {
	n := openTest(t)
	ctx := context.Background()
	cfg, _ := n.Repo.Config().Set("Datastore.StorageMax", "4MiB")
	if err := n.Repo.SaveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	pinned := make([]byte, 3<<20)
	rand.Read(pinned)
	pc, err := n.Add(ctx, "p", bytes.NewReader(pinned), AddOptions{Chunker: "size-262144"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		junk := make([]byte, 1<<20)
		rand.Read(junk)
		if _, err := n.Add(ctx, "j", bytes.NewReader(junk), AddOptions{Chunker: "size-262144", NoPin: true}, nil); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := n.Stat(ctx)
	res := n.autoGCOnce(ctx, slog.New(slog.DiscardHandler))
	after, _ := n.Stat(ctx)
	if before.Bytes <= 4<<20 || res.Blocks == 0 || after.Bytes > 4<<20*9/10 {
		t.Fatalf("auto-gc: before %d, freed %+v, after %d (limit %d)", before.Bytes, res, after.Bytes, 4<<20)
	}
	if after.Bytes < 3<<20 {
		t.Fatalf("auto-gc freed %d bytes, more than it needed to", before.Bytes-after.Bytes)
	}
	var out bytes.Buffer
	if _, err := n.Cat(ctx, pc, &out, FetchOptions{}); err != nil || !bytes.Equal(out.Bytes(), pinned) {
		t.Fatalf("pinned content after auto-gc: %v", err)
	}
	if res := n.autoGCOnce(ctx, slog.New(slog.DiscardHandler)); res.Blocks != 0 {
		t.Fatalf("auto-gc ran under the limit: %+v", res)
	}
}
