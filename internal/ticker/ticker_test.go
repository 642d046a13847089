package ticker

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var calls atomic.Int32
		done := make(chan struct{})
		go func() {
			Run(ctx, time.Minute, func() { calls.Add(1) })
			close(done)
		}()
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if calls.Load() != 0 {
			t.Fatalf("%d calls before the first interval", calls.Load())
		}
		time.Sleep(2*time.Minute + time.Nanosecond)
		synctest.Wait()
		if calls.Load() != 3 {
			t.Fatalf("%d calls after 3 intervals, want 3", calls.Load())
		}
		cancel()
		<-done
		time.Sleep(time.Hour)
		if calls.Load() != 3 {
			t.Fatalf("%d calls after ctx ended, want 3", calls.Load())
		}
	})
}
