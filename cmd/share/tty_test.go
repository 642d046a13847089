package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the master, which the test reads,
// and the terminal, which the command writes to.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	// A terminal as wide as a real one, so the bar has room for its figures.
	return openPTYSize(t, 160)
}

// openPTYSize is openPTY with a terminal cols wide (0: of unknown size,
// as a pty nobody sized reports).
func openPTYSize(t *testing.T, cols uint16) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("SHARE_REQUIRE_LAB") != "" { // CI: the terminal tests must run
			t.Fatalf("no pseudo-terminals here: %v", err)
		}
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	if cols > 0 {
		unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: cols})
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// runOnTerminal runs cmd with its stderr on a pseudo-terminal and returns
// what the terminal received, once cmd has exited.
func runOnTerminal(t *testing.T, cmd *exec.Cmd) (string, error) {
	t.Helper()
	master, tty := openPTY(t)
	cmd.Stderr = tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the command holds it now; EOF (EIO) once it exits
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&screen, master); close(copied) }()
	err := cmd.Wait()
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal was not closed after the command exited")
	}
	return screen.String(), err
}

// TestLANGetOnTerminal: on a terminal, a get with no daemon says what it
// is doing while it fetches (finding providers, then the peers it fetches
// from, bytes so far of the total, MB/s and the ETA), clears the bar and
// says where it saved the file. h1's link is limited to 50 Mbit/s so that
// the 8 MiB take over a second, and the bar is drawn several times.
func TestLANGetOnTerminal(t *testing.T) {
	l := newLab(t, 2, "--rate", "50mbit")
	work := t.TempDir()
	r1, r2 := filepath.Join(work, "r1"), filepath.Join(work, "r2")
	l.startDaemon(t, "h1", r1)
	data := randBytes(t, 8<<20)
	c := l.add(t, "h1", r1, data)

	dst := filepath.Join(work, "out.bin")
	cmd := l.share("h2", r2, "get", c, "-o", dst, "--timeout", "20s")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	screen, err := runOnTerminal(t, cmd)
	if err != nil {
		t.Fatalf("get: %v\n%q", err, screen)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get wrote %d different bytes (%v)", len(got), err)
	}
	t.Logf("terminal (%d bytes): %q", len(screen), screen)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`fetching from 1 peer\(s\)`),
		regexp.MustCompile(`[0-9.]+/8\.4 MB, [0-9.]+ [kM]B/s`), // bytes of the total, rate
		regexp.MustCompile(`\[[0-9hms]+:[0-9hms]+\]`),          // elapsed:ETA
		regexp.MustCompile(`\r *\rsaved ` + c + ` to `),        // bar cleared, then the result
		// where the bytes came from
		regexp.MustCompile(`saved ` + c + ` to \S+ \(8\.0 MiB from 1 peer: 8\.0 MiB from \w{6}…\w{6} over share\)`),
	} {
		if !want.MatchString(screen) {
			t.Errorf("the terminal shows no %s", want)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("get wrote %q to stdout", stdout.String())
	}
	checkGetJSON(t, l, c, filepath.Join(work, "r3"), filepath.Join(work, "out.json.bin"))

	// Content nobody has: the terminal says what get is waiting for, and
	// the timeout ends it with one clear line and status 1.
	missing := "bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4"
	cmd = l.share("h2", r2, "get", missing, "-o", filepath.Join(work, "none"), "--timeout", "2s")
	screen, err = runOnTerminal(t, cmd)
	t.Logf("terminal (%d bytes): %q", len(screen), screen)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("get of missing content: %v, want exit status 1", err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`finding providers`),
		regexp.MustCompile(`\r *\rshare: ` + missing + `: not found locally, and nothing arrived in time.*is a node that has it running`),
	} {
		if !want.MatchString(screen) {
			t.Errorf("the terminal shows no %s", want)
		}
	}
}

// TestLANGetKilledResumes: a get killed mid-transfer (SIGKILL, no daemon on
// the getter) has kept what it fetched up to its last checkpoint (about a
// second back), the repository verifies, and the re-run fetches the rest
// and writes identical bytes. The kill waits for the progress bar to pass
// 60% of a 32 MiB file that h1's 50 Mbit/s link sends in about 5 s.
func TestLANGetKilledResumes(t *testing.T) {
	l := newLab(t, 2, "--rate", "50mbit")
	work := t.TempDir()
	r1, r2 := filepath.Join(work, "r1"), filepath.Join(work, "r2")
	l.startDaemon(t, "h1", r1)
	data := randBytes(t, 32<<20)
	c := l.add(t, "h1", r1, data)
	dst := filepath.Join(work, "out.bin")

	master, tty := openPTY(t)
	cmd := l.share("h2", r2, "get", c, "-o", dst, "--timeout", "20s")
	cmd.Stderr = tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the kill reaches share, not only the lab wrapper
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	screen := &syncBuffer{}
	go io.Copy(screen, master)
	frame := regexp.MustCompile(`\(([0-9.]+)/([0-9.]+) MB`)
	waitFor(t, 30*time.Second, "the get to pass 60%", func() bool {
		m := frame.FindAllStringSubmatch(screen.String(), -1)
		if len(m) == 0 {
			return false
		}
		var done, total float64
		fmt.Sscan(m[len(m)-1][1], &done)
		fmt.Sscan(m[len(m)-1][2], &total)
		return total > 0 && done >= 0.6*total
	})
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("a killed get left its output file")
	}

	var st struct{ Blocks, Bytes int64 }
	statOut, err := l.share("h2", r2, "repo", "stat", "--json").Output()
	if err != nil {
		t.Fatalf("repo stat after the kill: %v", err)
	}
	if err := json.Unmarshal(statOut, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("after a kill at 60%%: %d blocks, %d bytes kept", st.Blocks, st.Bytes)
	if st.Bytes < int64(len(data))/4 {
		t.Fatalf("the killed get kept %d bytes of %d: its checkpoints did not last", st.Bytes, len(data))
	}
	if msg, err := l.share("h2", r2, "repo", "verify").CombinedOutput(); err != nil {
		t.Fatalf("repo verify after the kill: %v\n%s", err, msg)
	}
	if msg, err := l.share("h2", r2, "get", c, "-o", dst, "--timeout", "20s").CombinedOutput(); err != nil {
		t.Fatalf("get after the kill: %v\n%s", err, msg)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the resumed get wrote %d different bytes (%v)", len(got), err)
	}
}

// checkGetJSON: get --json into a fresh repository says how many bytes
// came from which peer over which protocol.
func checkGetJSON(t *testing.T, l *lab, c, repo, dst string) {
	t.Helper()
	out, err := l.share("h2", repo, "get", c, "-o", dst, "--json", "--timeout", "20s").Output()
	if err != nil {
		t.Fatalf("get --json: %v", err)
	}
	var got struct {
		Cid, Path string
		Fetched   int64
		From      []struct {
			Peer, Protocol string
			Blocks         int
			Bytes          int64
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("get --json printed %q: %v", out, err)
	}
	// 8 leaves of 1 MiB and the root
	if got.Cid != c || got.Path != dst || len(got.From) != 1 || got.From[0].Bytes != got.Fetched ||
		got.Fetched < 8<<20 || got.Fetched > 8<<20+4096 || got.From[0].Blocks != 9 ||
		got.From[0].Protocol != "/share/blocks/1.0.0" || got.From[0].Peer == "" {
		t.Fatalf("get --json printed %s", out)
	}
}

// TestBarOnUnsizedTerminal: on a terminal that does not know its width
// (a pty nobody sized), the bar is drawn for 80 columns, not as an empty
// "||" (the library took the width of 0 as given).
func TestBarOnUnsizedTerminal(t *testing.T) {
	for _, cols := range []uint16{0, 160} {
		master, tty := openPTYSize(t, cols)
		bar := newBar(tty, 8<<20, "fetching from 2 peer(s)")
		bar.Set64(4 << 20)
		bar.Exit()
		tty.Close()
		master.SetReadDeadline(time.Now().Add(5 * time.Second))
		var screen bytes.Buffer
		io.Copy(&screen, master) // until the deadline, or EIO once tty is closed
		frame := regexp.MustCompile(`50% \|(█+ *)\|`).FindStringSubmatch(screen.String())
		if frame == nil {
			t.Fatalf("%d columns: no bar with its squares drawn in %q", cols, screen.String())
		}
		widest := 0
		for _, l := range regexp.MustCompile(`[\r\n]`).Split(screen.String(), -1) {
			widest = max(widest, utf8.RuneCountInString(l))
		}
		if limit := max(int(cols), 80); widest > limit {
			t.Errorf("%d columns: a line of %d runes: %q", cols, widest, screen.String())
		}
		t.Logf("%d columns: %q", cols, screen.String())
	}
}
