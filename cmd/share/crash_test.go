package main

import (
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAddKilled SIGKILLs `share add` at random moments and checks that the
// repository stays consistent: verify passes, a killed add leaves no pin,
// and gc removes its orphans. A finished add is pinned and complete.
func TestAddKilled(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	src := filepath.Join(work, "big")
	writeFile(t, src, randBytes(t, 48<<20))
	want := strings.TrimSpace(ok(t, t.TempDir(), "add", "-Q", src))
	iterations := 12
	if testing.Short() {
		iterations = 4
	}
	killed := 0
	for i := 0; i < iterations; i++ {
		cmd := exec.Command(shareBin, "add", "-Q", src)
		cmd.Env = append(cmd.Environ(), "SHARE_PATH="+rp)
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill somewhere between start-up and well after the likely end.
		time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond)
		cmd.Process.Kill()
		err := cmd.Wait()
		finished := err == nil
		if !finished {
			killed++
		}

		ok(t, rp, "repo", "verify")
		pins := ok(t, rp, "pin", "ls", "-q")
		if finished {
			root := strings.TrimSpace(out.String())
			if !strings.Contains(pins, root) {
				t.Fatalf("iteration %d: finished add of %s left no pin", i, root)
			}
			ok(t, rp, "pin", "rm", root)
		} else if pins != "" {
			// Killed after the pin was durable, before the process exited:
			// the pin must be the whole file (verify checked it is complete).
			if strings.TrimSpace(pins) != want {
				t.Fatalf("iteration %d: killed add left a pin: %q", i, pins)
			}
			ok(t, rp, "pin", "rm", want)
		}
		ok(t, rp, "gc")
		var st struct{ Blocks int }
		json.Unmarshal([]byte(ok(t, rp, "repo", "stat", "--json")), &st)
		if st.Blocks != 0 {
			t.Fatalf("iteration %d: gc left %d orphan blocks", i, st.Blocks)
		}
	}
	if killed == 0 {
		t.Fatal("no add was killed mid-way: the test proved nothing")
	}
	t.Logf("%d of %d adds killed mid-way", killed, iterations)
}
