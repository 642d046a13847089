package blockstore

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/internal/damage"
)

// checkCorrupt checks that err is of kind errs.Corrupt, names c, and is one
// short line (no stack trace, no Pebble error chain).
func checkCorrupt(t *testing.T, what string, err error, c cid.Cid) {
	t.Helper()
	if !errs.Is(errs.Corrupt, err) || !strings.Contains(err.Error(), c.String()) {
		t.Fatalf("%s: %v (kind %v), want kind corrupt naming %s", what, err, errs.KindOf(err), c)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 300 {
		t.Fatalf("%s: error is not one short line: %q", what, msg)
	}
}

// TestCorruptSSTable flips one bit inside a block's bytes in an ingested
// sstable of a closed store: reading that block is an error of kind
// Corrupt that names it (never a crash, nor an ERROR log), and every other
// block still reads.
func TestCorruptSSTable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, smallFiles)
	var cids []cid.Cid
	var datas [][]byte
	b := s.NewBatch()
	for i := range 6 {
		c, data := testBlock(t, uint64(i), 1<<20)
		cids, datas = append(cids, c), append(datas, data)
		if err := b.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	s.Close()
	// Part 1 of block 3.
	if _, err := damage.Flip(dir, datas[3][partSize+1000:partSize+1064]); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	s = openTest(t, dir, &Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	defer s.Close()
	bad := cids[3]
	_, err := s.Get(ctx, bad)
	checkCorrupt(t, "Get", err, bad)
	_, _, err = s.BorrowParts(ctx, bad)
	checkCorrupt(t, "BorrowParts", err, bad)
	_, err = s.GetAppend(ctx, nil, bad)
	checkCorrupt(t, "GetAppend", err, bad)
	for i, c := range cids {
		if i == 3 {
			continue
		}
		if got, err := getBytes(ctx, s, c); err != nil || !bytes.Equal(got, datas[i]) {
			t.Fatalf("Get of intact block %d: %v", i, err)
		}
	}
	n := 0
	err = s.ForEach(ctx, func(multihash.Multihash, int) error { n++; return nil })
	if err != nil || n != len(cids) {
		t.Fatalf("ForEach saw %d blocks, %v; want %d (the index is intact)", n, err, len(cids))
	}
	if log.Len() > 0 {
		t.Fatalf("the store logged (at info or above): %s", log.String())
	}
}

// TestCorruptIndex flips one bit of an inline block in a flushed sstable
// of the index: Get of that block and ForEach both fail with kind Corrupt.
func TestCorruptIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	var cids []cid.Cid
	var datas [][]byte
	for i := range 4 {
		c, data := testBlock(t, uint64(i), 8<<10)
		cids, datas = append(cids, c), append(datas, data)
		if err := s.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := damage.Flip(dir, datas[1][1000:1064]); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	s = openTest(t, dir, &Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	defer s.Close()
	_, err := s.Get(ctx, cids[1])
	checkCorrupt(t, "Get of an inline block", err, cids[1])
	err = s.ForEach(ctx, func(multihash.Multihash, int) error { return nil })
	if !errs.Is(errs.Corrupt, err) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("ForEach over a damaged index: %q, want one line of kind corrupt", err)
	}
	if log.Len() > 0 {
		t.Fatalf("the store logged (at info or above): %s", log.String())
	}
}
