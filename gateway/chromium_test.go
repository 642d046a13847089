package gateway

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "copy the status page screenshot to testdata/status.png")

const chromiumPath = "/usr/bin/chromium"

// needChromium skips the test without Chromium, unless CI requires it
// (SHARE_REQUIRE_CHROMIUM=1).
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("SHARE_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("SHARE_REQUIRE_CHROMIUM=1 but %s is missing: %v", chromiumPath, err)
		}
		t.Skipf("%s is missing (apt-get install -y chromium to run this test)", chromiumPath)
	}
}

// runChromium loads url in headless Chromium with the given extra flags
// and returns its standard output.
func runChromium(t *testing.T, url string, extra ...string) string {
	t.Helper()
	out, _ := runChromiumLog(t, url, extra...)
	return out
}

// runChromiumLog is runChromium that also returns the page's console
// messages (uncaught errors included), one a line.
func runChromiumLog(t *testing.T, url string, extra ...string) (out, console string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
		"--window-size=1200,900", "--virtual-time-budget=3000",
		"--enable-logging=stderr", "--v=0",
	}, extra...)
	args = append(args, url)
	cmd := exec.CommandContext(ctx, chromiumPath, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(extra, " "), err, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, ":CONSOLE") {
			lines = append(lines, l)
		}
	}
	return string(stdout), strings.Join(lines, "\n")
}

// liveStatus is a node whose transfers advance at each status call.
func liveStatus(polls int) Status {
	st := testStatus(polls)
	st.Transfers = []Transfer{
		{Cid: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", Bytes: int64(min(10+15*polls, 100)) * (240 << 20) / 100, Total: 240 << 20, Peers: 4, Started: time.Now().Add(-42 * time.Second)},
		{Cid: "bafkr4ibzpogk6fdb2ljwqtrjzbs4gnhkwjfgxfzxnfvsymu7vzwxusnbh4", Bytes: int64(polls) * 37 << 20, Total: 1200 << 20, Peers: 2, Started: time.Now().Add(-9 * time.Second)},
		{Cid: "bafybeibml5uieyxa5tufngvg7fgwbkwvlsuntwbxgtskoqynbt7wlchmfm", Bytes: 1 << 20, Peers: 1, Started: time.Now().Add(-2 * time.Second)},
	}
	st.Transfers[0].Rate = int64(polls) << 20 // a rate of its own at each poll
	st.Transfers[0].From = []TransferPeer{
		{Peer: "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK", Protocol: "share", Blocks: 300, Bytes: 75 << 20},
		{Peer: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", Protocol: "bitswap", Blocks: 40, Bytes: 10 << 20},
	}
	st.Transfers[1].Rate = 37 << 20
	st.Peers = append(st.Peers[:1],
		PeerStatus{ID: "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK", Addr: "/ip4/192.168.1.23/tcp/4001", Protocol: "share",
			RateIn: 4 << 20, RateOut: 300 << 10, BytesIn: 75 << 20, BlocksIn: 300, BytesOut: 12 << 20, BlocksOut: 48},
		PeerStatus{ID: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", Addr: "/ip4/203.0.113.9/tcp/4001/p2p/12D3KooWRelay/p2p-circuit", Protocol: "bitswap", Relayed: true,
			RateIn: 1 << 20, BytesIn: 10 << 20, BlocksIn: 40},
	)
	st.Traffic = liveTraffic(polls)
	st.ID = "12D3KooWStatusPageNodeID"
	return st
}

// liveTraffic is the node's throughput at a poll: a history one point
// longer at each poll, up to the 5 minutes a node keeps.
func liveTraffic(polls int) Traffic {
	n := min(240+polls, 300)
	tr := Traffic{In: make([]int64, n), Out: make([]int64, n)}
	for i := range n {
		tr.In[i] = int64(i%60) << 18 // a saw tooth to 15 MiB/s
		tr.Out[i] = 2 << 20
	}
	tr.RateIn, tr.RateOut = tr.In[n-1], tr.Out[n-1]
	tr.BytesIn, tr.BytesOut = 3<<30+int64(polls)<<20, 1<<30
	return tr
}

// graphPoints is how many points the page's script drew in its graph's
// path of id, and its data-updates.
func graphPoints(t *testing.T, dom, id string) (points, updates int) {
	t.Helper()
	g := regexp.MustCompile(`<svg id="graph" data-updates="(\d+)"`).FindStringSubmatch(dom)
	if g == nil {
		t.Fatalf("no graph on the page:\n%s", dom)
	}
	updates, _ = strconv.Atoi(g[1])
	p := regexp.MustCompile(`<path id="` + id + `" class="[a-z]+" d="([^"]*)"`).FindStringSubmatch(dom)
	if p == nil {
		t.Fatalf("no path %s in the graph:\n%s", id, dom)
	}
	return strings.Count(p[1], "M") + strings.Count(p[1], "L"), updates
}

// TestStatusPageChromium renders the status page in headless Chromium and
// checks what its script made of it: the node, its peers, and a transfer's
// progress from a later poll than the one the page was rendered with.
func TestStatusPageChromium(t *testing.T) {
	needChromium(t)
	node := &fakeNode{stat: liveStatus}
	srv := httptest.NewServer(New(node, Options{}))
	defer srv.Close()

	dom := runChromium(t, srv.URL+"/", "--dump-dom")
	node.mu.Lock()
	polls := node.polls
	node.mu.Unlock()
	for _, want := range []string{"12D3KooWStatusPageNodeID", "12D3KooWPeerOne", "/ip4/192.168.1.7/tcp/4001", "live · updated"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if updates := regexp.MustCompile(`<body data-updates="(\d+)"`).FindStringSubmatch(dom); updates == nil || updates[1] == "0" || polls < 2 {
		t.Fatalf("the script did not poll (%d status calls):\n%s", polls, dom)
	}
	// The page was rendered with poll 1 (25%); the script shows a later one.
	found := false
	for k := 2; k <= polls; k++ {
		if strings.Contains(dom, fmt.Sprintf(`<span class="pct">%.1f%%</span>`, float64(min(10+15*k, 100)))) {
			found = true
		}
	}
	if !found {
		t.Errorf("no transfer progress from a poll in 2..%d:\n%s", polls, dom)
	}
	checkLive(t, dom, polls)

	node.mu.Lock()
	node.polls = 0 // so the screenshot shows transfers halfway
	node.mu.Unlock()
	shot := filepath.Join(t.TempDir(), "status.png")
	runChromium(t, srv.URL+"/", "--screenshot="+shot)
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	t.Logf("screenshot: %s", shot)
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join("testdata", "status.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkLive checks what the script made of a later poll than the page's
// first (polls in all): the transfer's current rate, its ETA and
// providers, the peers' figures, and the graph redrawn with that poll's
// history.
func checkLive(t *testing.T, dom string, polls int) {
	t.Helper()
	found := false
	for k := 2; k <= polls; k++ {
		if strings.Contains(dom, fmt.Sprintf(`<td class="num">%d.0 MiB/s</td>`, k)) {
			found = true
		}
	}
	if !found {
		t.Errorf("no transfer rate from a poll in 2..%d", polls)
	}
	for _, want := range []string{
		"12D3Ko…rRJsNK</span> 75.0 MiB · share", "12D3Ko…CVe2Xo</span> 10.0 MiB · bitswap",
		`<span class="tag">relayed</span>`, "<td>bitswap</td>",
		`<td class="num">4.0 MiB/s</td><td class="num">300.0 KiB/s</td>`, "75.0 MiB · 300 blocks", "12.0 MiB · 48 blocks",
		`id="rate-out">↑ 2.0 MiB/s<`, " in · 1.0 GiB served",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the script's page lacks %q", want)
		}
	}
	// (1200 MiB - 37 MiB a poll) at 37 MiB/s: about 30 s.
	if !regexp.MustCompile(`<td class="num">37.0 MiB/s</td><td class="num">[23]\ds</td>`).MatchString(dom) {
		t.Error("no rate and ETA of the second transfer")
	}
	points, updates := graphPoints(t, dom, "graph-in")
	if updates < 2 || points <= 241 || points > 240+polls {
		t.Errorf("graph drew %d points in %d updates; want those of a poll in 2..%d (241..%d points)", points, updates, polls, 240+polls)
	}
	if out, _ := graphPoints(t, dom, "graph-out"); out != points {
		t.Errorf("graph-out has %d points, graph-in %d", out, points)
	}
}

// TestStatusPageStates loads the status page of an idle node, of one with
// pins and no transfers, and of one mid-transfer with nothing pinned, and
// checks that its script runs without an error and keeps updating: an
// empty table once threw in render and left the page stale.
func TestStatusPageStates(t *testing.T) {
	needChromium(t)
	states := []struct {
		name string
		stat func(polls int) Status
	}{
		{"idle", func(int) Status { return Status{ID: "12D3KooWIdleNode"} }},
		{"pins", func(polls int) Status {
			st := testStatus(polls)
			st.Transfers = nil
			return st
		}},
		{"transfer", func(polls int) Status {
			st := liveStatus(polls)
			st.Pins = nil
			return st
		}},
	}
	updates := regexp.MustCompile(`<body[^>]* data-updates="(\d+)"`)
	liveText := regexp.MustCompile(`<span id="live">([^<]*)</span>`)
	for _, s := range states {
		t.Run(s.name, func(t *testing.T) {
			srv := httptest.NewServer(New(&fakeNode{stat: s.stat}, Options{}))
			defer srv.Close()
			dom, console := runChromiumLog(t, srv.URL+"/", "--dump-dom")
			if console != "" {
				t.Errorf("script errors:\n%s", console)
			}
			m := updates.FindStringSubmatch(dom)
			if m == nil {
				t.Fatalf("no data-updates on the body:\n%s", dom)
			}
			// Polls are a second apart in the 3 s of virtual time: the
			// page must have applied more than the first.
			if n, _ := strconv.Atoi(m[1]); n < 2 {
				t.Errorf("data-updates=%d, want it growing past 1", n)
			}
			if live := liveText.FindStringSubmatch(dom); live == nil || !strings.HasPrefix(live[1], "live · updated") {
				t.Errorf("live banner %q, want \"live · updated ...\"", live)
			}
			// The graph is redrawn at each poll, with no history too.
			points, n := graphPoints(t, dom, "graph-in")
			if n < 2 || (s.name == "idle") != (points == 0) {
				t.Errorf("graph: %d updates, %d points", n, points)
			}
		})
	}
}
