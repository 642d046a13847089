package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/mocknet"
)

// slowNet is a mocknet whose connections deliver each write a fixed
// delay after it was made (one-way latency), in order, without limiting
// the bandwidth.
type slowNet struct {
	*mocknet.Network
	delay time.Duration
}

func (s slowNet) Listen(laddr ma.Multiaddr) (p2p.Listener, error) {
	l, err := s.Network.Listen(laddr)
	if err != nil {
		return nil, err
	}
	return slowListener{l, s.delay}, nil
}

func (s slowNet) Dial(ctx context.Context, raddr ma.Multiaddr) (net.Conn, error) {
	c, err := s.Network.Dial(ctx, raddr)
	if err != nil {
		return nil, err
	}
	return newSlowConn(c, s.delay), nil
}

type slowListener struct {
	p2p.Listener
	delay time.Duration
}

func (l slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newSlowConn(c, l.delay), nil
}

// slowConn queues its writes and writes each to the pipe once its delay
// has passed.
type slowConn struct {
	net.Conn
	delay time.Duration
	q     chan slowWrite
	done  chan struct{}
	once  sync.Once
}

type slowWrite struct {
	b  []byte
	at time.Time
}

func newSlowConn(c net.Conn, d time.Duration) *slowConn {
	s := &slowConn{Conn: c, delay: d, q: make(chan slowWrite, 4096), done: make(chan struct{})}
	go s.deliver()
	return s
}

func (s *slowConn) Write(b []byte) (int, error) {
	w := slowWrite{b: append([]byte(nil), b...), at: time.Now().Add(s.delay)}
	select {
	case s.q <- w:
		return len(b), nil
	case <-s.done:
		return 0, net.ErrClosed
	}
}

func (s *slowConn) deliver() {
	for {
		select {
		case w := <-s.q:
			time.Sleep(time.Until(w.at)) // the link's latency, the subject of the test
			if _, err := s.Conn.Write(w.b); err != nil {
				s.Close()
				return
			}
		case <-s.done:
			return
		}
	}
}

func (s *slowConn) Close() error {
	s.once.Do(func() { close(s.done) })
	return s.Conn.Close()
}

// followNet is a publisher and n followers on an in-memory network of
// delay links, each follower linked to three random nodes before it,
// the publisher to three followers; before runs on the publisher alone.
func followNet(t testing.TB, n int, delay time.Duration, before func(pub *Node)) (pub *Node, fols []*Node) {
	t.Helper()
	m := newMemNet(t)
	tr := slowNet{m.net, delay}
	start := func() *Node {
		return startNode(t, NetworkOptions{ListenAddrs: []string{"/memory/0"}, Transport: tr},
			map[string]string{"Routing.Mode": `"server"`}, nil)
	}
	pub = start()
	before(pub)
	all := []*Node{pub}
	rng := rand.New(rand.NewPCG(1, 2))
	for range n {
		f := start()
		for _, i := range rng.Perm(len(all))[:min(3, len(all))] {
			connect(t, f, all[i])
		}
		all = append(all, f)
		fols = append(fols, f)
	}
	return pub, fols
}

// TestFollowPropagation: a record published reaches 50 followers, three
// links of 5 ms away at most, over gossipsub, and each writes the new
// version. It reports the time until all hold the record and until all
// folders are written, and the copies of the record sent per update.
func TestFollowPropagation(t *testing.T) {
	if testing.Short() {
		t.Skip("51 nodes")
	}
	n, _ := strconv.Atoi(os.Getenv("SHARE_FOLLOWERS"))
	if n <= 0 {
		n = 50
	}
	res := measurePropagation(t, n, 5*time.Millisecond)
	t.Logf("%d followers, 5 ms links: all held the record after %v (median follower %v); %d copies of the record received (%d first, %d duplicates); %d folders written within 10 s, the last after %v",
		n, res.allRecord, res.medianRecord, res.copies, n, res.copies-int64(n), res.written, res.allWritten)
	if res.allRecord > time.Second {
		t.Errorf("the record took %v to reach all %d followers, want under 1 s", res.allRecord, n)
	}
}

type propagation struct {
	allRecord, medianRecord, allWritten time.Duration
	copies                              int64 // deliveries and duplicates, over all followers
	written                             int   // followers whose folder was written (within 10 s)
}

func measurePropagation(t testing.TB, n int, delay time.Duration) propagation {
	// A first record, published before the publisher has peers, so that
	// the measured publish takes its sequence from here, not from a DHT
	// lookup (which the in-memory network's DHT of memory addresses
	// cannot answer).
	pub, fols := followNet(t, n, delay, func(pub *Node) {
		c0 := addFolder(t, pub, map[string][]byte{"index.html": []byte("<p>version 0</p>")})
		pub.Publish(context.Background(), dag.PathOf(c0), PublishOptions{})
	})
	id := pub.Repo.Identity.ID
	name, topic := ipns.Name(id), ipns.Topic(id)
	written := make(chan time.Time, n)
	for _, f := range fols {
		dir := filepath.Join(t.TempDir(), "out")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.Follow(ctx, name, dir, FollowOptions{Updated: func(u FollowUpdate) {
				if u.Err == "" {
					written <- time.Now()
				}
			}})
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	// The meshes form on the heartbeats of the first second or two.
	waitFor(t, 30*time.Second, func() bool {
		for _, f := range fols {
			tp, _ := f.net.PubSub.Join(topic)
			if len(tp.MeshPeers()) == 0 {
				return false
			}
		}
		return len(pub.net.PubSub.ListPeers(topic)) > 0
	}, func() string {
		empty, peerless, conns := 0, 0, 0
		for _, f := range fols {
			tp, _ := f.net.PubSub.Join(topic)
			if len(tp.MeshPeers()) == 0 {
				empty++
			}
			if len(f.net.PubSub.ListPeers("")) == 0 {
				peerless++
			}
			conns += len(f.net.Host.Peers())
		}
		return fmt.Sprintf("the followers' meshes did not form: %d of %d empty, %d without pubsub peers; the publisher knows %d subscribers; %d connections",
			empty, len(fols), peerless, len(pub.net.PubSub.ListPeers(topic)), conns)
	})
	before := copiesReceived(fols)
	c := addFolder(t, pub, map[string][]byte{"index.html": []byte("<p>version 1</p>")})
	start := time.Now()
	// Publish returns after the DHT put, which the in-memory network's
	// DHT cannot take (it waits for a routing table): the announcement
	// went out before.
	published := make(chan struct{})
	go func() {
		defer close(published)
		pub.Publish(context.Background(), dag.PathOf(c), PublishOptions{})
	}()
	defer func() { <-published }()
	// When each follower first holds the record, polled every millisecond.
	got := make([]time.Duration, n)
	for held := 0; held < n; time.Sleep(time.Millisecond) {
		for i, f := range fols {
			if got[i] == 0 {
				if _, err := f.localRecord(id); err == nil {
					got[i], held = time.Since(start), held+1
				}
			}
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("after 30 s, %d of %d followers hold the record", held, n)
		}
	}
	slices.Sort(got)
	res := propagation{allRecord: got[n-1], medianRecord: got[n/2]}
	// Copies still on their way count in the next second's heartbeat
	// gossip at the latest; those are counted here too.
	time.Sleep(time.Second)
	res.copies = copiesReceived(fols) - before
	// The folders: a follower fetches from the peers it finds holding
	// the version (its links to the publisher and to followers that have
	// it); without a DHT of memory addresses, one that finds none waits.
	deadline := time.After(10 * time.Second)
	for res.written < n {
		select {
		case at := <-written:
			res.written++
			res.allWritten = max(res.allWritten, at.Sub(start))
		case <-deadline:
			return res
		}
	}
	return res
}

// copiesReceived counts the messages the followers' pubsub received:
// first copies and duplicates.
func copiesReceived(nodes []*Node) int64 {
	var sum int64
	for _, n := range nodes {
		s := n.net.PubSub.Stats()
		sum += s.Delivered + s.Duplicate
	}
	return sum
}
