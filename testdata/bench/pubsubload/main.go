// Command pubsubload drives a daemon's pubsub through its API socket, for
// testdata/bench/pubsub.sh:
//
//	pubsubload pub -topic T -n N -size B -p P   publish N messages of B bytes, P at a time
//	pubsubload sub -topic T -n N                count messages until N arrived (or -timeout)
//	pubsubload topics -n N [-per-topic]         subscribe to N topics on one stream and hold them
//
// SHARE_PATH names the repository. pub prints its rate, sub the rate at
// which messages arrived (first to last), how many did and how many the
// daemon said it dropped. topics holds one API stream for all N topics,
// or with -per-topic one each (what N `share pubsub sub` would cost).
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
	perTopic := fs.Bool("per-topic", false, "topics: one API stream per topic")
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
		err = topics(ctx, *n, *perTopic)
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
	var dropped int64
	fmt.Println("subscribed") // the script waits for this line
	err = c.PubsubSubscribeTopics(ctx, []string{topic}, func(api.MessageJSON) {
		last = time.Now()
		if got == 0 {
			first = last
		}
		if got++; got >= n {
			cancel()
		}
	}, func(k int64) { dropped += k })
	d := last.Sub(first)
	fmt.Printf("received %d/%d in %.2fs: %.0f msg/s, %d dropped\n", got, n, d.Seconds(), float64(got-1)/d.Seconds(), dropped)
	return err
}

func topics(ctx context.Context, n int, perTopic bool) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("topic-%04d", i)
	}
	fmt.Println("subscribed")
	if !perTopic {
		return c.PubsubSubscribeTopics(ctx, names, func(api.MessageJSON) {}, nil)
	}
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.PubsubSubscribe(ctx, name, func(api.MessageJSON) {})
		}()
	}
	wg.Wait()
	return nil
}
