package relay

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/share-p2p/share/p2p/mocknet"
	"github.com/share-p2p/share/p2p/peer"
)

// Time is the subject of these tests: they run in synctest bubbles, where
// an hour passes at once.

func TestReservationExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		r, a, b := newNode(t, mn), newNode(t, mn), newNode(t, mn)
		newService(t, r, Limits{ReservationTTL: 10 * time.Minute})
		c := reserved(t, r, a)
		NewClient(b.Host, testLogger())
		time.Sleep(10*time.Minute + time.Second)
		if len(c.Reservations()) != 0 || len(c.Addrs()) != 0 {
			t.Fatalf("an expired reservation is still advertised: %v", c.Addrs())
		}
		err := b.Connect(context.Background(), circuitTo(r, a.ID()))
		var se *StatusError
		if !errors.As(err, &se) || se.Status != StatusNoReservation {
			t.Fatalf("connect after the reservation expired: %v, want NO_RESERVATION", err)
		}
	})
}

func TestKeepRenewsAndReplaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		r1, r2, a := newNode(t, mn), newNode(t, mn), newNode(t, mn)
		newService(t, r1, Limits{ReservationTTL: 10 * time.Minute})
		newService(t, r2, Limits{ReservationTTL: 10 * time.Minute})
		c := NewClient(a.Host, testLogger())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Keep(ctx, KeepConfig{Static: []peer.AddrInfo{r1.AddrInfo(), r2.AddrInfo()}, Want: 1})
		}()
		synctest.Wait()
		held := c.Reservations()
		if len(held) != 1 || held[0].Relay != r1.ID() {
			t.Fatalf("held %+v, want one reservation, on the first static relay", held)
		}
		first := held[0].Expire

		// Renewed 2 min before expiry, not before.
		time.Sleep(7*time.Minute + 59*time.Second)
		synctest.Wait()
		if got := c.Reservations()[0].Expire; !got.Equal(first) {
			t.Fatalf("renewed at %s, before it was due", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := c.Reservations()[0].Expire; !got.After(first) {
			t.Fatalf("reservation expiring at %s not renewed 2 min before", got)
		}

		// The relay goes away: the next static relay replaces it.
		r1.Close()
		synctest.Wait()
		held = c.Reservations()
		if len(held) != 1 || held[0].Relay != r2.ID() {
			t.Fatalf("held %+v after the relay closed, want one on the second", held)
		}
		cancel()
		<-done
	})
}

func TestKeepDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		r, a := newNode(t, mn), newNode(t, mn)
		newService(t, r, Limits{})
		c := NewClient(a.Host, testLogger())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var private atomic.Bool
		go c.Keep(ctx, KeepConfig{Static: []peer.AddrInfo{r.AddrInfo()}, Enabled: private.Load, Interval: time.Minute})
		synctest.Wait()
		if len(c.Reservations()) != 0 {
			t.Fatal("reserved while disabled (a public node)")
		}
		private.Store(true)
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(c.Reservations()) != 1 {
			t.Fatal("no reservation a minute after the node turned private")
		}
	})
}

func TestCircuitDurationLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		r, a, b := newNode(t, mn), newNode(t, mn), newNode(t, mn)
		newService(t, r, Limits{CircuitDuration: time.Minute})
		reserved(t, r, a)
		NewClient(b.Host, testLogger())
		if err := b.Connect(context.Background(), circuitTo(r, a.ID())); err != nil {
			t.Fatal(err)
		}
		conn := b.Conn(a.ID())
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if conn.IsClosed() {
			t.Fatal("circuit closed before its duration limit")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !conn.IsClosed() {
			t.Fatal("circuit open after its duration limit")
		}
	})
}
