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
	st.Peers = append(st.Peers[:1],
		PeerStatus{ID: "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK", Addr: "/ip4/192.168.1.23/tcp/4001"},
		PeerStatus{ID: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", Addr: "/ip6/fe80::1c2b:3aff:fe4d:5e6f/tcp/4001"},
	)
	st.ID = "12D3KooWStatusPageNodeID"
	return st
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
	if strings.Contains(dom, `data-updates="0"`) || polls < 2 {
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
		})
	}
}
