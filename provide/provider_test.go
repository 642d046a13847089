package provide

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/p2p/peer"
)

// failRouter fails every Provide with the error its test sets.
type failRouter struct {
	mu  sync.Mutex
	err error
}

func (r *failRouter) set(err error) { r.mu.Lock(); r.err = err; r.mu.Unlock() }

func (r *failRouter) Provide(ctx context.Context, keys [][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *failRouter) FindProviders(ctx context.Context, key []byte, max int) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo)
	close(ch)
	return ch
}

// syncBuf is a log destination the provider's goroutine and the test share.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRunNoDHTPeersSaidOnce: a node with no DHT peers (a LAN-only daemon)
// is told so once, at info, not warned every round; after a round that
// works it is told again; other failures stay warnings every round.
func TestRunNoDHTPeersSaidOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuf
		r := &failRouter{err: fmt.Errorf("provide: %w", dht.ErrNoPeers)}
		p, err := New(Config{
			Router:       r,
			Keys:         func(_ context.Context, fn func([]byte) error) error { return fn([]byte("k")) },
			Interval:     time.Hour,
			InitialDelay: time.Minute,
			Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		round := func() { time.Sleep(time.Hour); synctest.Wait() }

		time.Sleep(time.Minute) // the first round
		synctest.Wait()
		round()
		round()
		if got := logs.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "level=INFO") || !strings.Contains(got, "no DHT peers") {
			t.Fatalf("three rounds with no DHT peers logged:\n%s", got)
		}
		r.set(nil)
		round()
		r.set(fmt.Errorf("provide: 3 of 3 keys reached no peer: %w", dht.ErrNoPeers))
		round()
		if got := logs.String(); strings.Count(got, "level=INFO") != 2 || strings.Contains(got, "WARN") {
			t.Fatalf("no peers, a round that worked, no peers again logged:\n%s", got)
		}
		r.set(errors.New("disk on fire"))
		round()
		round()
		if got := logs.String(); strings.Count(got, "level=WARN") != 2 {
			t.Fatalf("two rounds of another failure logged:\n%s", got)
		}
		cancel()
		<-done
	})
}
