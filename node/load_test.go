package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

const loadClientEnv = "SHARE_TEST_LOAD_CLIENT"

// statusKB reads a field of /proc/self/status in KiB.
func statusKB(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	t.Skip("no " + field)
	return 0
}

// TestLoad: many inbound connections, each holding several open streams
// (from a child process, so this process holds only the server side),
// while a legitimate peer fetches a file. The fetch must still complete,
// and the load add less than 250 MB to the server's RSS: 1000 idle
// connections cost about 85 MB (net's own measure: 500 take 41 MB),
// streams a few KiB each, and the exchange bounds what one peer may queue. SHARE_LONG=1 runs 1000
// connections and 10 000 streams; the default 100 and 1000.
func TestLoad(t *testing.T) {
	if target := os.Getenv(loadClientEnv); target != "" {
		loadClient(t, target)
		return
	}
	if raceEnabled {
		t.Skip("measures memory and time: not under -race")
	}
	conns, perConn := 100, 10
	if os.Getenv("SHARE_LONG") != "" {
		conns = 1000
	}
	server, getter := onlineNode(t), onlineNode(t)
	cfgLimit := server.Repo.Config().Limits
	if conns > cfgLimit.ConnsInbound {
		t.Fatalf("test wants %d connections, the default limit is %d", conns, cfgLimit.ConnsInbound)
	}
	c, data := addRandom(t, server, 32<<20, 7)
	connect(t, getter, server)
	fetch := func() time.Duration {
		t.Helper()
		getter.GC(context.Background(), nil)
		start := time.Now()
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := getter.Cat(ctx, c, &out, FetchOptions{}); err != nil || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("legitimate fetch: %v", err)
		}
		return time.Since(start)
	}
	quiet := fetch()
	runtime.GC()
	debug.FreeOSMemory()
	before := statusKB(t, "VmRSS")

	target := p2pAddrs(server.net.Host.ID(), server.net.Host.Addrs())[0]
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoad$")
	cmd.Env = append(os.Environ(), loadClientEnv+"="+target, fmt.Sprintf("SHARE_TEST_LOAD=%d,%d,%s", conns, perConn, server.net.Host.Protocol("blocks")))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	sc := bufio.NewScanner(stdout)
	var ready string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "load client ready") {
			ready = sc.Text()
			break
		}
	}
	if ready == "" {
		t.Fatal("the load client failed")
	}
	go io.Copy(io.Discard, stdout)
	waitFor(t, 60*time.Second, func() bool { return len(server.net.Host.Peers()) >= conns+1 },
		func() string {
			return fmt.Sprintf("%d peers connected, want %d", len(server.net.Host.Peers()), conns+1)
		})
	loaded := fetch()
	runtime.GC()
	debug.FreeOSMemory()
	rss := statusKB(t, "VmRSS")
	t.Logf("%s; VmRSS of this process (server, getter and the test's 32 MiB file) %d MB before the load, %d MB under it (+%d MB); legitimate 32 MiB fetch %v quiet, %v under load",
		ready, before>>10, rss>>10, (rss-before)>>10, quiet.Round(time.Millisecond), loaded.Round(time.Millisecond))
	if rss-before > 250<<10 {
		t.Fatalf("the load added %d MB of RSS, want < 250 MB", (rss-before)>>10)
	}
}

// loadClient runs in the child: conns hosts connect to target and each
// opens perConn streams of the blocks protocol, held open until stdin
// closes.
func loadClient(t *testing.T, target string) {
	var conns, perConn int
	var proto string
	parts := strings.SplitN(os.Getenv("SHARE_TEST_LOAD"), ",", 3)
	conns, _ = strconv.Atoi(parts[0])
	perConn, _ = strconv.Atoi(parts[1])
	proto = parts[2]
	ai, err := peer.AddrInfoFromString(target)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var streams []*p2p.Stream
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	failed := 0
	for i := 0; i < conns; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			h, err := p2p.NewHost(context.Background(), p2p.Config{Key: key, ListenAddrs: []ma.Multiaddr{}})
			if err != nil {
				t.Error(err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := h.Connect(ctx, ai); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			for j := 0; j < perConn; j++ {
				s, err := h.NewStream(ctx, ai.ID, proto)
				if err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
					continue
				}
				mu.Lock()
				streams = append(streams, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("load client ready: %d connections, %d streams open, %d failed\n", conns, len(streams), failed)
	bufio.NewReader(os.Stdin).ReadString('\n')
}
