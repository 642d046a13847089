package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/share-p2p/share/internal/kubotest"
)

// lockedBuffer collects a process's output for readers while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestKuboPubsub: on network ipfs a share daemon and kubo 0.43.1 (pubsub
// enabled) subscribed to one topic see each other as its peers, and a
// message published by either reaches the other's subscriber, signed by
// its author.
func TestKuboPubsub(t *testing.T) {
	k := kubotest.StartWith(t, map[string]string{"Pubsub.Enabled": "true"})
	rp := t.TempDir()
	configure(t, rp, "Network", "ipfs")
	startDaemon(t, rp)
	var self struct{ ID string }
	json.Unmarshal([]byte(ok(t, rp, "id", "--json")), &self)
	ok(t, rp, "connect", k.Addr)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kuboSub := k.Command(ctx, "pubsub", "sub", "interop")
	var kuboOut lockedBuffer
	kuboSub.Stdout = &kuboOut
	if err := kuboSub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); kuboSub.Wait() }()
	sub := startSub(t, rp, "--json", "interop")
	waitFor(t, 30*time.Second, "share and kubo to list each other on the topic", func() bool {
		kp, _ := k.Try(nil, "pubsub", "peers", "interop")
		return strings.Contains(ok(t, rp, "pubsub", "peers", "interop"), k.ID) && strings.Contains(string(kp), self.ID)
	})

	ok(t, rp, "pubsub", "pub", "interop", "from share\n")
	waitFor(t, 10*time.Second, "kubo's subscriber to print share's message", func() bool {
		return strings.Contains(kuboOut.String(), "from share")
	})
	var own struct{ From string } // share's subscriber sees its own message first
	json.Unmarshal([]byte(sub.next(t, 10*time.Second)), &own)

	if _, err := k.Try([]byte("from kubo"), "pubsub", "pub", "interop"); err != nil {
		t.Fatal(err)
	}
	var m struct {
		From, Seqno, Topic string
		Data               []byte
	}
	if err := json.Unmarshal([]byte(sub.next(t, 10*time.Second)), &m); err != nil {
		t.Fatal(err)
	}
	if m.From != k.ID || string(m.Data) != "from kubo" || m.Topic != "interop" {
		t.Errorf("share received %+v, want kubo's message", m)
	}
}
