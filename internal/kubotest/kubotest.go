// Package kubotest runs a real kubo daemon for tests that check share
// against it: on loopback only, in a repository of its own, with no
// bootstrap peers and mDNS off (kubo's "test" profile). Tests find the
// binary through SHARE_KUBO; without it they skip, unless
// SHARE_REQUIRE_KUBO=1 (CI), when they fail.
package kubotest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Kubo is a running kubo daemon.
type Kubo struct {
	t    testing.TB
	bin  string
	Repo string // its IPFS_PATH
	// ID is its PeerID, Addr its loopback swarm address with /p2p/ID.
	ID, Addr string
}

// Binary returns the kubo binary from SHARE_KUBO, or skips (fails with
// SHARE_REQUIRE_KUBO=1) without one.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("SHARE_KUBO")
	if bin == "" {
		if os.Getenv("SHARE_REQUIRE_KUBO") == "1" {
			t.Fatal("SHARE_REQUIRE_KUBO=1 but SHARE_KUBO does not name a kubo binary")
		}
		t.Skip("SHARE_KUBO not set: no kubo to test against")
	}
	return bin
}

// Start starts a kubo daemon and stops it when the test ends.
func Start(t testing.TB) *Kubo {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith starts a kubo daemon with config keys set first (values are
// JSON: `ipfs config --json KEY VALUE`), e.g. Swarm.RelayService.Enabled
// true.
func StartWith(t testing.TB, config map[string]string) *Kubo {
	t.Helper()
	k := &Kubo{t: t, bin: Binary(t), Repo: filepath.Join(t.TempDir(), "kubo")}
	k.Run("init", "--profile", "test")
	// Loopback only, ports picked by the kernel (the test profile's).
	k.Run("config", "--json", "Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`)
	for key, v := range config {
		k.Run("config", "--json", key, v)
	}
	k.startDaemon()
	k.ID = strings.TrimSpace(string(k.Run("id", "-f", "<id>")))
	for _, a := range strings.Fields(string(k.Run("swarm", "addrs", "local", "--id"))) {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			k.Addr = a
		}
	}
	if k.Addr == "" {
		t.Fatal("kubo has no loopback TCP address")
	}
	return k
}

// startDaemon starts `ipfs daemon` and waits until it says it is ready.
func (k *Kubo) startDaemon() {
	t := k.t
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, k.bin, "daemon")
	cmd.Env = k.env()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	ready, scanned := make(chan struct{}), make(chan struct{})
	var out strings.Builder // read once scanned is closed
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		isReady := false
		for sc.Scan() {
			if isReady {
				continue // drain: the daemon must not block on its output
			}
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Daemon is ready") {
				isReady = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-scanned:
		t.Fatalf("kubo daemon exited before it was ready:\n%s", out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("kubo daemon not ready after 60 s")
	}
}

func (k *Kubo) env() []string { return append(os.Environ(), "IPFS_PATH="+k.Repo) }

// Run runs an ipfs command against the daemon's repository and returns
// its output; a failure fails the test.
func (k *Kubo) Run(args ...string) []byte {
	k.t.Helper()
	out, err := k.Try(nil, args...)
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

// Try runs an ipfs command with stdin (may be nil), within 2 minutes.
func (k *Kubo) Try(stdin []byte, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("ipfs %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// Command returns an ipfs command against the daemon's repository, not
// started: for the long-running ones (ipfs pubsub sub). The caller
// starts and ends it.
func (k *Kubo) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env()
	return cmd
}
