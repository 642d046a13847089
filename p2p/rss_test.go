package p2p

import (
	"bufio"
	"context"
	"fmt"
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

	"github.com/share-p2p/share/p2p/peer"
)

const rssClientEnv = "NET_TEST_RSS_CLIENT"

// vmRSS returns the resident set size of this process in bytes.
func vmRSS(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestManyConnsRSS connects 500 peers (in a child process, so that only
// the listening host is measured) to one host and reports its RSS.
func TestManyConnsRSS(t *testing.T) {
	if target := os.Getenv(rssClientEnv); target != "" {
		rssClient(t, target)
		return
	}
	if testing.Short() || raceEnabled {
		t.Skip("measures memory: not under -race or -short")
	}
	const n = 500
	before := vmRSS(t)
	h := newTestHost(t, Config{Limits: Limits{MaxInbound: 2 * n, HighWater: 2 * n, LowWater: n, MaxPendingHandshakes: n}})
	target := h.AddrInfo().P2pAddrs()[0].String()
	cmd := exec.Command(os.Args[0], "-test.run=^TestManyConnsRSS$", "-test.v")
	cmd.Env = append(os.Environ(), rssClientEnv+"="+target, "NET_TEST_RSS_N="+strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "rss client ready") {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatal("client failed")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d peers", n), func() bool { return len(h.Peers()) == n })
	runtime.GC()
	debug.FreeOSMemory()
	rss := vmRSS(t)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d connections: VmRSS %.1f MB (%.1f MB before the host), Go heap in use %.1f MB, %d goroutines",
		n, float64(rss)/1e6, float64(before)/1e6, float64(ms.HeapInuse)/1e6, runtime.NumGoroutine())
	if rss > 200e6 {
		t.Errorf("VmRSS %.1f MB with %d connections, want < 200 MB", float64(rss)/1e6, n)
	}
}

// rssClient runs in the child: n hosts each connect to target, then wait
// for stdin to close.
func rssClient(t *testing.T, target string) {
	n, _ := strconv.Atoi(os.Getenv("NET_TEST_RSS_N"))
	ai, err := peer.AddrInfoFromP2pAddr(ma.StringCast(target))
	if err != nil {
		t.Fatal(err)
	}
	hosts := make([]*Host, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range hosts {
		hosts[i] = newTestHost(t, Config{ListenAddrs: []ma.Multiaddr{}})
		wg.Add(1)
		sem <- struct{}{}
		go func(h *Host) {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := h.Connect(ctx, ai); err != nil {
				t.Error(err)
			}
		}(hosts[i])
	}
	wg.Wait()
	fmt.Println("rss client ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
}
