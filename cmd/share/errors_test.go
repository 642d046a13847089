package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/repo"
)

// TestErrorLine: the line and exit status depend on the kind alone.
func TestErrorLine(t *testing.T) {
	const c = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"
	enospc := &fs.PathError{Op: "write", Path: "/r/db/000001.log", Err: syscall.ENOSPC}
	for _, tc := range []struct {
		name   string
		err    error
		line   string
		status int
	}{
		{"plain", errors.New("disk on fire"), "disk on fire", 1},
		{"newlines", errors.New("a\nb"), "a b", 1},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), "", 141},
		{"interrupted", fmt.Errorf("get: %w", context.Canceled), "interrupted", 130},
		{"in use", fmt.Errorf("/r: %w", repo.ErrInUse), "/r: repository is in use by another process" + inUseHint, 1},
		{"no space", fmt.Errorf("add f: put %s: %w", c, errs.Errorf(errs.NoSpace, "no space left on device: 3 MiB free")),
			"the disk is full: no space left on device: 3 MiB free" + noSpaceHint, 1},
		{"ENOSPC", fmt.Errorf("put %s: %w", c, enospc), "the disk is full: no space left on device" + noSpaceHint, 1},
		{"timeout", errs.E(errs.Timeout, errs.Path(c), errors.New("nothing arrived in time")), c + ": nothing arrived in time" + timeoutHint, 1},
		{"deadline", fmt.Errorf("ls: %w", context.DeadlineExceeded), "ls: context deadline exceeded" + timeoutHint, 1},
		{"fetch's timeout", errs.E(errs.Timeout, errs.Path(c), errors.New("not found locally, and nothing arrived in time")), c + ": not found locally, and nothing arrived in time" + timeoutHint, 1},
		{"not found", errs.E("pin rm", errs.NotFound, errs.Path(c)), "pin rm " + c + ": not found", 1},
	} {
		line, status := errorLine(tc.err)
		if line != tc.line || status != tc.status {
			t.Errorf("%s: %q, %d; want %q, %d", tc.name, line, status, tc.line, tc.status)
		}
	}
}

// TestSameLineThroughDaemon: a failed command says the same with and
// without a daemon, hints included: an unknown config key names where the
// keys are, and cat says what get says when nothing arrives.
func TestSameLineThroughDaemon(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	const missing = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"
	cmds := []struct {
		args []string
		has  string
		same bool // the very same line (else only the hint)
	}{
		{[]string{"config", "set", "Foo.Bar", "1"}, `unknown config key "Foo.Bar" (see 'share config show' for the keys)`, true},
		{[]string{"config", "get", "Foo.Bar"}, `unknown config key "Foo.Bar" (see 'share config show' for the keys)`, true},
		{[]string{"config", "set", "Routing.Mode", "sideways"}, "config Routing.Mode", true},
		{[]string{"cat", "nope"}, `invalid CID "nope"`, true},
		{[]string{"cat", "--timeout", "1s", missing}, timeoutHint, false},
		{[]string{"get", "--timeout", "1s", missing, "-o", filepath.Join(work, "x")}, timeoutHint, false},
		{[]string{"ls", "--timeout", "1s", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"}, timeoutHint, false},
	}
	lines := func() []string {
		var out []string
		for _, c := range cmds {
			r := run(t, rp, nil, c.args...)
			line := strings.TrimSuffix(r.stderr, "\n")
			if r.code != 1 || strings.Count(line, "\n") > 0 || !strings.HasPrefix(line, "share: ") || !strings.Contains(line, c.has) {
				t.Errorf("share %v: exit %d, stderr %q; want one line with %q", c.args, r.code, r.stderr, c.has)
			}
			out = append(out, line)
		}
		return out
	}
	ok(t, rp, "init")
	alone := lines()
	startDaemon(t, rp)
	through := lines()
	for i, c := range cmds {
		if c.same && alone[i] != through[i] {
			t.Errorf("share %v: %q alone, %q through the daemon", c.args, alone[i], through[i])
		}
	}
}

// TestPinAddNamesTheCIDOnce: a failed pin add names its CID once.
func TestPinAddNamesTheCIDOnce(t *testing.T) {
	rp := t.TempDir()
	const missing = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"
	check := func(how string) {
		r := run(t, rp, nil, "pin", "add", "--timeout", "1s", missing)
		if r.code != 1 || strings.Count(r.stderr, missing) != 1 {
			t.Errorf("pin add %s: exit %d, stderr %q; want the CID once", how, r.code, r.stderr)
		}
	}
	check("alone")
	startDaemon(t, rp)
	check("through the daemon")
}

// TestCommandLineErrors: a command line that does not parse fails with
// status 1 and one line that names the command and says what to type: an
// unknown command of a group (not only of share) with a suggestion, a bad
// flag without "share" twice, a missing argument with the usage.
func TestCommandLineErrors(t *testing.T) {
	rp := t.TempDir()
	for _, tc := range []struct {
		args []string
		has  []string
	}{
		{[]string{"pin", "lss"}, []string{`unknown command "lss" for "share pin"; did you mean "ls"?`}},
		{[]string{"repo", "stats"}, []string{`unknown command "stats" for "share repo"; did you mean "stat"?`}},
		{[]string{"lss"}, []string{`unknown command "lss" for "share"; did you mean "ls"?`}},
		{[]string{"pin", "-q", "frobnicate"}, []string{`unknown command "frobnicate" for "share pin"`}}, // --json: TestJSONConventions
		{[]string{"get", "--bogus", "x"}, []string{"share: get: unknown flag: --bogus", "usage: share get CID[/PATH] [-o OUT]"}},
		{[]string{"get"}, []string{"share: get: accepts 1 arg(s), received 0", "usage: share get CID[/PATH] [-o OUT]"}},
		{[]string{"pin", "add"}, []string{"share: pin add: requires at least 1 arg(s)", "usage: share pin add CID[/PATH]..."}},
		{[]string{"config", "set", "Foo"}, []string{"share: config set: ", "usage: share config set KEY VALUE"}},
	} {
		r := run(t, rp, nil, tc.args...)
		line := strings.TrimSuffix(r.stderr, "\n")
		if r.code != 1 || strings.ContainsAny(line, "\n\t") || !strings.HasPrefix(line, "share: ") || strings.Contains(line, "share: share") {
			t.Errorf("share %v: exit %d, stderr %q; want status 1 and one line", tc.args, r.code, r.stderr)
		}
		for _, want := range tc.has {
			if !strings.Contains(line, want) {
				t.Errorf("share %v: %q lacks %q", tc.args, line, want)
			}
		}
	}
	// A group alone still shows its help.
	if r := run(t, rp, nil, "pin"); r.code != 0 || !strings.Contains(r.stdout, "share pin [command]") || strings.Contains(r.stdout, "share pin [flags]") {
		t.Errorf("share pin: exit %d, stdout %q", r.code, r.stdout)
	}
}

// TestInterruptExitStatus: Ctrl-C (SIGINT) during a get ends it with one
// "interrupted" line and status 130, as shells expect of an interrupted
// command (128 + SIGINT), not the 1 of a failure.
func TestInterruptExitStatus(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	const missing = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shareBin, "-v", "get", "--timeout", "1m", missing, "-o", filepath.Join(work, "x"))
	cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The debug log starts once the command runs, after its signal
	// handler is in place.
	sc := bufio.NewScanner(stderr)
	if !sc.Scan() {
		t.Fatalf("get logged nothing: %v", cmd.Wait())
	}
	cmd.Process.Signal(os.Interrupt)
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || last != "share: interrupted" {
		t.Fatalf("interrupted get: %v, last line %q; want status 130 and \"share: interrupted\"", err, last)
	}
}

// TestGetIntoMissingDir: get -o into a directory that does not exist fails
// at once (before fetching: content nobody has fails the same), with one
// line naming the path asked for, and leaves no temporary file.
func TestGetIntoMissingDir(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	f := filepath.Join(work, "f")
	writeFile(t, f, []byte("hello\n"))
	c := strings.TrimSpace(ok(t, rp, "add", "-Q", f))
	const missing = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"
	for _, out := range []string{"/nonexistent/x", filepath.Join(work, "missing", "x")} {
		for _, id := range []string{c, missing} {
			r := run(t, rp, nil, "get", "--timeout", "20s", id, "-o", out)
			want := "share: get: cannot write " + out + ": directory " + filepath.Dir(out) + " does not exist\n"
			if r.code != 1 || r.stderr != want {
				t.Errorf("get %s -o %s: exit %d, stderr %q; want %q", id, out, r.code, r.stderr, want)
			}
		}
	}
	if left, _ := filepath.Glob(filepath.Join(work, ".*share-tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
