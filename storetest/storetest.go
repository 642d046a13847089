// Package storetest is the conformance suite of share.Getter, as Perkeep's
// storagetest is of its blob servers: every block store and every wrapper
// runs it, so that they keep the one contract the DAG reader, the gateway,
// pins and gc rely on. A test of a getter calls Run with a function that
// makes a fresh one:
//
//	storetest.Run(t, func(t *testing.T) storetest.Store {
//		s := dag.NewMemStore()
//		return storetest.Store{Getter: s, Put: s.Put}
//	})
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
)

// Store is a getter under test and what the suite needs to know of it.
type Store struct {
	// Getter is the getter under test.
	share.Getter
	// Put makes a block readable through Getter: the store's own Put, or
	// the Put of the store a read-only wrapper reads from (a provider's,
	// for a getter that fetches from the network). The suite reuses data
	// once Put returns.
	Put func(ctx context.Context, c cid.Cid, data []byte) error
	// Flush, if not nil, makes what Put stored readable (a Batch's
	// Commit); the suite calls it after its Puts and before its Gets.
	Flush func(ctx context.Context) error
	// Verified is what Getter's blocks say of themselves: false for
	// storage, which may have rotted; true for a getter that fetches and
	// checks them.
	Verified bool
	// Fetches says the getter fetches blocks from elsewhere (a network
	// getter) and keeps what it fetched: a block it had already is not
	// Verified while one it fetched is (Verified is not checked), Has
	// says only what is here without fetching (it is not checked
	// against Put), and a missing block may end as a Timeout, nothing
	// having arrived, rather than NotFound.
	Fetches bool
}

// Sizes are the block sizes every check of contents is run with: the
// blockstore keeps blocks above 256 KiB in parts of 256 KiB.
var Sizes = []int{0, 1, 1 << 10, 256<<10 - 1, 256 << 10, 256<<10 + 1, 1 << 20, 4 << 20}

// Run runs the suite over the getters newStore makes, one per subtest.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Store)
	}{
		{"PutGet", testPutGet},
		{"Missing", testMissing},
		{"Release", testRelease},
		{"PutReusesBuffer", testPutReusesBuffer},
		{"Codecs", testCodecs},
		{"Concurrent", testConcurrent},
		{"Cancel", testCancel},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// block returns n pseudo-random bytes of seed and their raw CID.
func block(seed uint64, n int) (cid.Cid, []byte) {
	data := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 's'}).Read(data)
	return dag.Sum(dag.Raw, data), data
}

func (s Store) put(t *testing.T, c cid.Cid, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), c, data); err != nil {
		t.Fatalf("Put %d bytes: %v", len(data), err)
	}
}

func (s Store) flush(t *testing.T) {
	t.Helper()
	if s.Flush == nil {
		return
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// get gets c and checks its bytes and Verified; the caller releases it.
func (s Store) get(t *testing.T, c cid.Cid, want []byte) share.Block {
	t.Helper()
	b, err := s.Get(t.Context(), c)
	if err != nil {
		t.Fatalf("Get %s (%d bytes): %v", c, len(want), err)
	}
	if !bytes.Equal(b.Data, want) {
		t.Fatalf("Get %s: %d bytes, not the %d put", c, len(b.Data), len(want))
	}
	if b.Verified != s.Verified && !s.Fetches {
		t.Fatalf("Get %s: Verified is %v, want %v", c, b.Verified, s.Verified)
	}
	return b
}

func (s Store) has(t *testing.T, c cid.Cid, want bool) {
	t.Helper()
	ok, err := s.Has(t.Context(), c)
	if s.Fetches {
		want = ok // what is here depends on what was fetched so far
	}
	if err != nil || ok != want {
		t.Fatalf("Has %s = %v, %v; want %v", c, ok, err, want)
	}
}

// testPutGet: what was put is got back, of every size.
func testPutGet(t *testing.T, s Store) {
	cids := make([]cid.Cid, len(Sizes))
	datas := make([][]byte, len(Sizes))
	for i, n := range Sizes {
		cids[i], datas[i] = block(uint64(i), n)
		s.put(t, cids[i], datas[i])
	}
	s.flush(t)
	for i := range Sizes {
		s.has(t, cids[i], true)
		s.get(t, cids[i], datas[i]).Release()
	}
}

// testMissing: a block never put is not there, and Get says so with the
// kind NotFound.
func testMissing(t *testing.T, s Store) {
	c, _ := block(1000, 100)
	s.has(t, c, false)
	_, err := s.Get(t.Context(), c)
	if !errs.Is(errs.NotFound, err) && !(s.Fetches && errs.Is(errs.Timeout, err)) {
		t.Fatalf("Get of a missing block: %v (kind %v), want kind %v", err, errs.KindOf(err), errs.NotFound)
	}
}

// testRelease: a released buffer may serve a later Get, never one still
// held.
func testRelease(t *testing.T, s Store) {
	for _, n := range Sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ca, a := block(uint64(2000+n), n)
			cb, b := block(uint64(3000+n), n)
			s.put(t, ca, a)
			s.put(t, cb, b)
			s.flush(t)
			s.get(t, ca, a).Release()
			s.get(t, cb, b).Release() // A's buffer may be B's now

			a1 := s.get(t, ca, a)
			a2 := s.get(t, ca, a) // twice, neither released
			if !bytes.Equal(a1.Data, a) {
				t.Fatal("the first of two unreleased Gets changed under the second")
			}
			b1 := s.get(t, cb, b)
			a1.Release()
			a3 := s.get(t, ca, a) // may take a1's buffer
			if !bytes.Equal(b1.Data, b) || !bytes.Equal(a2.Data, a) {
				t.Fatal("a held block changed when another was released and got again")
			}
			a2.Release()
			a3.Release()
			b1.Release()
			share.Block{}.Release() // the zero block releases nothing
		})
	}
}

// testPutReusesBuffer: Put does not keep the caller's buffer.
func testPutReusesBuffer(t *testing.T, s Store) {
	var cids []cid.Cid
	var datas [][]byte
	for i, n := range Sizes {
		c, data := block(uint64(4000+i), n)
		buf := bytes.Clone(data)
		s.put(t, c, buf)
		for j := range buf {
			buf[j] ^= 0xff
		}
		cids, datas = append(cids, c), append(datas, data)
	}
	s.flush(t)
	for i := range cids {
		s.get(t, cids[i], datas[i]).Release()
	}
}

// testCodecs: a block is found by its multihash, whatever the codec of
// the CID it was put or asked under. The block is a valid dag-pb node, so
// that a getter that decodes what it fetches can decode it.
func testCodecs(t *testing.T, s Store) {
	for i, codecs := range [][2]uint64{{dag.Raw, dag.DagPB}, {dag.DagPB, dag.Raw}} {
		_, leaf := block(uint64(5000+i), 100)
		data := (&dag.PBNode{Data: leaf}).Marshal()
		put, other := dag.Sum(codecs[0], data), dag.Sum(codecs[1], data)
		s.put(t, put, data)
		s.flush(t)
		s.has(t, other, true)
		s.get(t, other, data).Release()
		s.get(t, put, data).Release()
	}
}

// testConcurrent: Gets of stored blocks run alongside Puts of others (run
// it with -race).
func testConcurrent(t *testing.T, s Store) {
	const workers, perWorker = 4, 8
	size := func(i int) int { return (i * 37 << 10) % (600 << 10) }
	var cids []cid.Cid
	var datas [][]byte
	for i := range workers * perWorker {
		c, data := block(uint64(6000+i), size(i))
		s.put(t, c, data)
		cids, datas = append(cids, c), append(datas, data)
	}
	s.flush(t)
	var mu sync.Mutex // Put and Flush: a Batch is not safe for concurrent use
	var wg sync.WaitGroup
	errc := make(chan error, 2*workers)
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errc <- s.getAll(t.Context(), cids, datas, w)
		}()
		go func() {
			defer wg.Done()
			for i := range perWorker {
				c, data := block(uint64(7000+w*perWorker+i), size(i))
				mu.Lock()
				err := s.Put(t.Context(), c, data)
				mu.Unlock()
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.flush(t)
	for i := range workers * perWorker {
		c, data := block(uint64(7000+i), size(i%perWorker))
		s.get(t, c, data).Release()
	}
}

// getAll gets every block, starting at a different one per worker, and
// compares its bytes before releasing it.
func (s Store) getAll(ctx context.Context, cids []cid.Cid, datas [][]byte, worker int) error {
	for k := range cids {
		i := (k + worker*len(cids)/4) % len(cids)
		b, err := s.Get(ctx, cids[i])
		if err != nil {
			return fmt.Errorf("Get %s: %w", cids[i], err)
		}
		equal := bytes.Equal(b.Data, datas[i])
		b.Release()
		if !equal {
			return fmt.Errorf("Get %s: wrong bytes while others were put", cids[i])
		}
	}
	return nil
}

// cancelWait bounds how long a Get with a cancelled context may take.
const cancelWait = 10 * time.Second

// testCancel: with a cancelled context a Get of a missing block ends with
// an error, at once; one of a stored block either honours the context or
// ignores it, and does the same every time.
func testCancel(t *testing.T, s Store) {
	c, data := block(8000, 1<<20)
	s.put(t, c, data)
	s.flush(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	missing, _ := block(8001, 100)
	if _, err := getWithin(t, ctx, s, missing); err == nil {
		t.Fatal("Get of a missing block with a cancelled context: no error")
	}
	var honours bool
	for i := range 3 {
		b, err := getWithin(t, ctx, s, c)
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			t.Fatalf("Get with a cancelled context: %v, want the context's error", err)
		case err == nil && !bytes.Equal(b.Data, data):
			t.Fatal("Get with a cancelled context: wrong bytes")
		case i > 0 && (err != nil) != honours:
			t.Fatalf("Get with a cancelled context: error %v, where an earlier one was not alike", err)
		}
		honours = err != nil
		b.Release()
	}
}

// getWithin is Get that fails the test if it does not return within
// cancelWait.
func getWithin(t *testing.T, ctx context.Context, s Store, c cid.Cid) (share.Block, error) {
	t.Helper()
	type result struct {
		b   share.Block
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := s.Get(ctx, c)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(cancelWait):
		t.Fatalf("Get %s with a cancelled context did not return within %s", c, cancelWait)
		return share.Block{}, nil
	}
}
