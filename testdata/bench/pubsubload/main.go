// Command pubsubload drives a daemon's pubsub through its API socket, for
// testdata/bench/pubsub.sh:
//
//	pubsubload pub -topic T -n N -size B -p P   publish N messages of B bytes, P at a time
//	pubsubload sub -topic T -n N                count messages until N arrived (or -timeout)
//	pubsubload topics -n N                      subscribe to N topics and hold them
//
// SHARE_PATH names the repository. pub prints its rate, sub the rate at
// which messages arrived (first to last) and how many did.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share/api"
	"github.com/share-p2p/share/repo"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pubsubload pub|sub|topics [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	topic := fs.String("topic", "bench", "topic")
	n := fs.Int("n", 10000, "messages (topics for topics)")
	size := fs.Int("size", 1024, "message size")
	par := fs.Int("p", 4, "publishes in flight")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	fs.Parse(os.Args[2:])
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, *timeout)
	defer cancel()
	var err error
	switch os.Args[1] {
	case "pub":
		err = pub(ctx, *topic, *n, *size, *par)
	case "sub":
		err = sub(ctx, *topic, *n)
	case "topics":
		err = topics(ctx, *n)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pubsubload:", err)
		os.Exit(1)
	}
}

func dial() (*api.Client, error) {
	p, err := repo.DefaultPath()
	if err != nil {
		return nil, err
	}
	return api.Dial(filepath.Join(p, repo.APISocket))
}

func pub(ctx context.Context, topic string, n, size, par int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, par)
	start := time.Now()
	for range par {
		c, err := dial()
		if err != nil {
			return err
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := make([]byte, size)
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				copy(data, fmt.Sprintf("%08d", i))
				if err := c.PubsubPublish(ctx, topic, bytes.NewReader(data)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	d := time.Since(start)
	fmt.Printf("published %d x %d B in %.2fs: %.0f msg/s\n", n, size, d.Seconds(), float64(n)/d.Seconds())
	return nil
}

func sub(ctx context.Context, topic string, n int) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	var got int
	var first, last time.Time
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fmt.Println("subscribed") // the script waits for this line
	err = c.PubsubSubscribe(ctx, topic, func(api.MessageJSON) {
		last = time.Now()
		if got == 0 {
			first = last
		}
		if got++; got >= n {
			cancel()
		}
	})
	d := last.Sub(first)
	fmt.Printf("received %d/%d in %.2fs: %.0f msg/s\n", got, n, d.Seconds(), float64(got-1)/d.Seconds())
	return err
}

func topics(ctx context.Context, n int) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.PubsubSubscribe(ctx, fmt.Sprintf("topic-%04d", i), func(api.MessageJSON) {})
		}()
	}
	fmt.Println("subscribed")
	wg.Wait()
	return nil
}
