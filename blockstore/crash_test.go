package blockstore

import (
	"bufio"
	"context"
	"github.com/cockroachdb/pebble/v2"
	"github.com/multiformats/go-multihash"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const crashEnv = "BLOCKSTORE_CRASH_DIR"

// TestCrashChild is the child of TestCrash: it writes blocks forever, in
// batches that roll sstables often, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	s, err := Open(dir, &Options{SmallBatch: 256 << 10, FileSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 200<<10)
	fillRandom(data)
	first, _ := strconv.ParseUint(os.Getenv("BLOCKSTORE_CRASH_FIRST"), 10, 64)
	for i := first; ; i++ {
		b := s.NewBatch()
		for j := range uint64(40) {
			if err := b.Put(ctx, fakeCID(i*1000+j), data[:100<<10+j]); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		b.Close()
		if i == first {
			os.Stdout.WriteString("committed\n")
		}
		if i%5 == 4 && i-first >= 2 { // deletes, which change the count too
			mhs := make([]multihash.Multihash, 20)
			for j := range mhs {
				mhs[j] = fakeCID((i-2)*1000 + uint64(j)).Hash()
			}
			if _, _, err := s.Delete(ctx, mhs); err != nil {
				t.Fatal(err)
			}
		}
		if i%3 == 0 { // and some small synced writes
			if err := s.Put(ctx, fakeCID(i*1000+999), data[:500]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCrash kills a child process in the middle of writing and checks that
// the store opens and that every index entry's data is present.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for round, delay := range []time.Duration{0, 30 * time.Millisecond, 120 * time.Millisecond, 300 * time.Millisecond} {
		cmd := exec.Command(exe, "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, "BLOCKSTORE_CRASH_FIRST="+strconv.Itoa(round*1000))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line != "committed\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q", line)
		}
		time.Sleep(delay) // the moment of the kill is the subject, not a wait
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		s := openTest(t, dir, nil)
		n := checkConsistent(t, s) // and the count: see checkCount
		if n < 40 {
			t.Fatalf("round %d: only %d blocks after a commit", round, n)
		}
		// The blocks of the committed batch are all there.
		for j := range uint64(40) {
			if ok, err := s.Has(context.Background(), fakeCID(uint64(round*1000)*1000+j)); !ok || err != nil {
				t.Fatalf("round %d: committed block %d missing (%v)", round, j, err)
			}
		}
		refs, data := countRefs(t, s)
		if refs != data {
			t.Fatalf("round %d: %d index entries point at data, but %d data keys exist", round, refs, data)
		}
		t.Logf("round %d: %d blocks, %d in sstables, %d unindexed ranges removed at open", round, n, data, s.recovered)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// countRefs counts index entries that point at data keys, and data keys.
func countRefs(t *testing.T, s *Store) (refs, data int) {
	t.Helper()
	for _, p := range []byte{prefixIndex, prefixData} {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{p}, UpperBound: []byte{p + 1}})
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			if p == prefixData {
				if len(it.Key()) == 9 { // part 0 of a block
					data++
				}
				continue
			}
			v, err := it.ValueAndErr()
			if err != nil {
				t.Fatal(err)
			}
			if v[0] == kindRef || v[0] == kindParts {
				refs++
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return refs, data
}
