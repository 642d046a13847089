package dag

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
)

// smallTree writes dirs directories of files small files each under a new
// directory and imports it into a MemStore.
func smallTree(t *testing.T, dirs, files int) (string, *MemStore, cid.Cid) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	for d := range dirs {
		dir := filepath.Join(src, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range files {
			data := fmt.Appendf(nil, "file %d of directory %d\n", f, d)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", f)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := NewMemStore()
	root, err := ImportPath(t.Context(), src, s, ImportOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src, s, root
}

// gateGetter holds back Get of one block until Get of another has been
// called: a writer that writes one file after the other never asks for
// the second while it waits for the first.
type gateGetter struct {
	share.Getter
	held, opener cid.Cid
	open         chan struct{}
	once         sync.Once
}

func (g *gateGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	switch c {
	case g.opener:
		g.once.Do(func() { close(g.open) })
	case g.held:
		select {
		case <-g.open:
		case <-ctx.Done():
			return share.Block{}, ctx.Err()
		}
	}
	return g.Getter.Get(ctx, c)
}

// TestWriteToFilesInParallel: the small files of a tree are written by
// several goroutines, so that a file whose block is slow to come (from
// the network) does not hold up the files after it.
func TestWriteToFilesInParallel(t *testing.T) {
	_, s, root := smallTree(t, 1, 4)
	ents, err := ReadDir(t.Context(), s, root)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ReadDir(t.Context(), s, ents[0].Cid)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateGetter{Getter: s, held: sub[0].Cid, opener: sub[1].Cid, open: make(chan struct{})}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out := filepath.Join(t.TempDir(), "out")
	if err := WriteTo(ctx, g, root, out, WriteOptions{}); err != nil {
		t.Fatalf("WriteTo: %v (the first file waits until the second is asked for)", err)
	}
	data, err := os.ReadFile(filepath.Join(out, "d00", "f03"))
	if err != nil || string(data) != "file 3 of directory 0\n" {
		t.Fatalf("f03 = %q, %v", data, err)
	}
}

// failGetter fails Get of one block.
type failGetter struct {
	share.Getter
	bad cid.Cid
}

var errBadBlock = errors.New("no such block here")

func (g *failGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	if c == g.bad {
		return share.Block{}, errBadBlock
	}
	return g.Getter.Get(ctx, c)
}

// TestWriteToFileFails: a file that cannot be written (its block does
// not come) fails the whole WriteTo with its error, written by a worker of
// the pool in the middle of a tree, and nothing is left behind.
func TestWriteToFileFails(t *testing.T) {
	_, s, root := smallTree(t, 3, 20)
	ents, err := ReadDir(t.Context(), s, root)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ReadDir(t.Context(), s, ents[1].Cid)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	err = WriteTo(t.Context(), &failGetter{Getter: s, bad: sub[7].Cid}, root, out, WriteOptions{})
	if !errors.Is(err, errBadBlock) {
		t.Fatalf("WriteTo = %v, want %v", err, errBadBlock)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// TestWriteToTreeProgress: the progress the pool's files report adds up
// to the tree's bytes, and the tree is written whole.
func TestWriteToTreeProgress(t *testing.T) {
	src, s, root := smallTree(t, 5, 30)
	var mu sync.Mutex
	var last uint64
	out := filepath.Join(t.TempDir(), "out")
	err := WriteTo(t.Context(), s, root, out, WriteOptions{Progress: func(done uint64) {
		mu.Lock()
		defer mu.Unlock()
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		last = done
	}})
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for d := range 5 {
		for f := range 30 {
			name := filepath.Join(fmt.Sprintf("d%02d", d), fmt.Sprintf("f%02d", f))
			a, err1 := os.ReadFile(filepath.Join(src, name))
			b, err2 := os.ReadFile(filepath.Join(out, name))
			if err1 != nil || err2 != nil || string(a) != string(b) {
				t.Fatalf("%s: %q, %v; want %q, %v", name, b, err2, a, err1)
			}
			want += uint64(len(a))
		}
	}
	if last != want {
		t.Fatalf("progress ends at %d, want %d", last, want)
	}
}
