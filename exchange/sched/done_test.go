package sched

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
)

// leafCIDs returns n distinct raw CIDs.
func leafCIDs(n int) []cid.Cid {
	cids := make([]cid.Cid, n)
	var b [8]byte
	for i := range cids {
		binary.BigEndian.PutUint64(b[:], uint64(i))
		cids[i] = dag.Sum(dag.Raw, b[:])
	}
	return cids
}

// fetchAll adds cids to s in batches of window and runs each batch
// through one peer: requested, received, verified, stored.
func fetchAll(t testing.TB, s *Sched, cids []cid.Cid, window int) {
	t.Helper()
	now := time.Unix(0, 0)
	p := s.AddPeer("p")
	var out []Send
	for i := 0; i < len(cids); i += window {
		batch := cids[i:min(i+window, len(cids))]
		for j, c := range batch {
			s.Add(c, []uint32{uint32(i + j)}, 4096)
		}
		out = s.Assign(p, now, out[:0])
		if len(out) != len(batch) {
			t.Fatalf("assigned %d of %d", len(out), len(batch))
		}
		for _, c := range batch {
			if s.Received(p, c, 4096, now) != Requested {
				t.Fatalf("%s not requested", c)
			}
			if !s.Verified(p, c, 4096, now).Store {
				t.Fatalf("%s not to store", c)
			}
			s.Stored(c, 4096, false)
		}
	}
}

func newTestSched() *Sched {
	return New(Config{MinWindow: 64, MaxWindow: 64, Lanes: 1, MaxInFlightBytes: 64 << 20,
		ProgressTimeout: time.Minute, MaxBlockSize: 2 << 20}, time.Unix(0, 0))
}

// TestStoredBlocksLeaveFrontier: a block once stored is known and done,
// and costs the scheduler little more than its CID (which the caller
// allocated): 200 000 fetched blocks keep at most 100 bytes each of heap
// (whole entries took 211), and a block added again is not fetched twice.
func TestStoredBlocksLeaveFrontier(t *testing.T) {
	const n = 200_000
	cids := leafCIDs(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newTestSched()
	fetchAll(t, s, cids, 64)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := int64(after.HeapInuse-before.HeapInuse) / n
	t.Logf("%d bytes of heap per stored block", per)
	if per > 100 {
		t.Errorf("%d bytes of heap per stored block, want at most 100", per)
	}
	if len(s.entries) != 0 {
		t.Errorf("%d entries left, want 0", len(s.entries))
	}
	for _, c := range cids[:10] {
		if known, done := s.Status(c); !known || !done || !s.Known(c) {
			t.Fatalf("%s: known %v done %v, want both", c, known, done)
		}
		s.Add(c, nil, 4096)
	}
	if m := s.Counts().Missing; m != 0 {
		t.Fatalf("%d missing after adding stored blocks again", m)
	}
	runtime.KeepAlive(s)
}

// TestWantStoredRefetches: a reader that waits for a block the scheduler
// stored and gave away gets it fetched again, before anything else.
func TestWantStoredRefetches(t *testing.T) {
	s := newTestSched()
	cids := leafCIDs(3)
	fetchAll(t, s, cids[:2], 64)
	s.Add(cids[2], []uint32{2}, 4096)
	if !s.Want(cids[0]) {
		t.Fatal("Want of a stored block does not wake the peers")
	}
	if known, done := s.Status(cids[0]); !known || done {
		t.Fatalf("wanted again: known %v done %v, want known, not done", known, done)
	}
	out := s.Assign(s.AddPeer("q"), time.Unix(1, 0), nil)
	if len(out) != 2 || out[0].C != cids[0] {
		t.Fatalf("assigned %v, want %s first", out, cids[0])
	}
	if c := s.Counts(); c.Missing != 2 {
		t.Fatalf("%d missing, want 2", c.Missing)
	}
}

// BenchmarkFetchLeaves is the scheduler's cost per block of a DAG of
// small leaves: added, assigned, received, verified and stored.
func BenchmarkFetchLeaves(b *testing.B) {
	cids := leafCIDs(100_000)
	b.ReportAllocs()
	for b.Loop() {
		fetchAll(b, newTestSched(), cids, 64)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(cids)), "ns/block")
}
