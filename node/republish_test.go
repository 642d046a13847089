package node

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// TestRepublisher runs the republisher for three days of fake time: every
// name is republished before its record expires, a long-lived one every
// interval, a short-lived one halfway through its lifetime.
func TestRepublisher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		start := time.Now()
		names := map[peer.ID]published{
			"long":  {Lifetime: 48 * time.Hour, At: start},
			"short": {Lifetime: time.Hour, At: start},
		}
		count := map[peer.ID]int{}
		r := &republisher{
			interval: RepublishInterval,
			log:      slog.New(slog.DiscardHandler),
			list: func() (map[peer.ID]published, error) {
				mu.Lock()
				defer mu.Unlock()
				out := map[peer.ID]published{}
				for k, v := range names {
					out[k] = v
				}
				return out, nil
			},
			publish: func(_ context.Context, id peer.ID, p published) error {
				mu.Lock()
				defer mu.Unlock()
				now := time.Now()
				if !now.Before(p.At.Add(p.Lifetime)) {
					t.Errorf("%s republished at %v, after its record expired at %v", id, now.Sub(start), p.At.Add(p.Lifetime).Sub(start))
				}
				p.At = now
				names[id] = p
				count[id]++
				return nil
			},
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.run(ctx); close(done) }()
		time.Sleep(72 * time.Hour)
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		// Every 4 h for 72 h; every 30 min (+ the minute of the check)
		// for the short one.
		if c := count["long"]; c < 17 || c > 18 {
			t.Errorf("the 48 h name was republished %d times in 72 h, want 18", c)
		}
		if c := count["short"]; c < 130 || c > 144 {
			t.Errorf("the 1 h name was republished %d times in 72 h, want about 140", c)
		}
		for id, p := range names {
			if now := time.Now(); !now.Before(p.At.Add(p.Lifetime)) {
				t.Errorf("%s expired at the end", id)
			}
		}
	})
}
