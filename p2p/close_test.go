package p2p

import (
	"context"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/share-p2p/share/p2p/mocknet"
)

// TestCloseUnderLoad closes connections and hosts while streams are busy
// in both directions and keepalives run, then checks that every goroutine
// is gone. go-yamux v4 has a known close deadlock (issue 129, fixed in v5);
// this is the test that would show it.
func TestCloseUnderLoad(t *testing.T) {
	base := runtime.NumGoroutine()
	for round := 0; round < 8; round++ {
		func() {
			cfg := Config{KeepAlive: 10 * time.Millisecond}
			if round >= 4 {
				cfg.Transport = mocknet.New()
			}
			a := newTestHost(t, cfg)
			cfg.Key = nil
			b := newTestHost(t, cfg)
			setEcho(a)
			setEcho(b)
			connect(t, a, b)
			var wg sync.WaitGroup
			buf := make([]byte, 64<<10)
			var busy []*flow
			// The streams are opened here, before the close: a writer that
			// opened its stream only after it would dial a new
			// connection and write until its deadline.
			for i := 0; i < 8; i++ {
				for _, pair := range [][2]*Host{{a, b}, {b, a}} {
					s, err := pair[0].NewStream(context.Background(), pair[1].ID(), echoProto)
					if err != nil {
						t.Fatal(err)
					}
					s.SetDeadline(time.Now().Add(20 * time.Second))
					f := &flow{}
					busy = append(busy, f)
					wg.Add(1)
					go func() {
						defer wg.Done()
						go io.Copy(&f.read, s)
						for {
							n, err := s.Write(buf)
							f.written.Add(int64(n))
							if err != nil {
								return
							}
						}
					}()
				}
			}
			// Close under load: once every stream has carried a buffer
			// each way (its echo is back), not after a guessed time.
			waitFor(t, 10*time.Second, "every stream to carry data both ways", func() bool {
				return !slices.ContainsFunc(busy, func(f *flow) bool {
					return f.written.Load() < int64(len(buf)) || f.read.Load() < int64(len(buf))
				})
			})
			switch round % 4 {
			case 0: // one side closes the connection
				a.Conn(b.ID()).Close()
			case 1: // both sides at once
				ca, cb := a.Conn(b.ID()), b.Conn(a.ID())
				go ca.Close()
				cb.Close()
			case 2: // hosts close
				go a.Close()
				b.Close()
			case 3: // the transport breaks under the session: writes fail
				a.Conn(b.ID()).raw.Close()
			}
			closed := time.Now()
			wg.Wait()
			// Every writer sees the close at once, not at its deadline.
			if d := time.Since(closed); d > 10*time.Second {
				t.Errorf("round %d: writers took %v to see the close", round, d)
			}
			a.Close()
			b.Close()
		}()
	}
	checkGoroutines(t, base, 10*time.Second)
}

// flow counts the bytes a stream of TestCloseUnderLoad wrote and read.
type flow struct {
	written atomic.Int64
	read    counter
}

// counter is an io.Writer that counts what it is given.
type counter struct{ atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.Add(int64(len(p)))
	return len(p), nil
}

// TestSubscribeAfterClose: a subscription made on a closed host is closed
// already, and closing it again is harmless (the relay keeper subscribed
// as the daemon stopped, and its Close panicked: close of closed channel).
func TestSubscribeAfterClose(t *testing.T) {
	h := newTestHost(t, Config{})
	h.Close()
	sub := h.Subscribe()
	if _, ok := <-sub.Events(); ok {
		t.Fatal("an event on a closed host's subscription")
	}
	sub.Close()
	sub.Close()
}
