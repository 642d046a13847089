package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of size (e.g. "64m") on a fresh directory
// and unmounts it at the end. It needs root: without it the test is
// skipped, unless SHARE_REQUIRE_LAB is set (CI), where it fails.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	need := func(why string, args ...any) {
		if os.Getenv("SHARE_REQUIRE_LAB") != "" {
			t.Fatalf(why, args...)
		}
		t.Skipf(why, args...)
	}
	if os.Geteuid() != 0 {
		need("a small tmpfs needs root (mount)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		need("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", dir).Run()
			t.Logf("umount %s: %v: %s (lazily unmounted)", dir, err, out)
		}
	})
	return dir
}

// freeBytes returns the space available on the file system holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// failsFull checks that a command failed for want of space: exit 1, one
// line that says so, no stack trace.
func failsFull(t *testing.T, rp string, args ...string) string {
	t.Helper()
	r := run(t, rp, nil, args...)
	line := strings.TrimRight(r.stderr, "\n")
	if r.code != 1 || strings.Contains(line, "\n") || !strings.HasPrefix(line, "share: ") ||
		strings.Contains(line, "goroutine ") || strings.Contains(line, "panic") {
		t.Fatalf("share %v on a full disk: exit %d, stderr %q; want exit 1 and one line", args, r.code, r.stderr)
	}
	if l := strings.ToLower(line); !strings.Contains(l, "no space") && !strings.Contains(l, "disk full") && !strings.Contains(l, "disk is full") {
		t.Fatalf("share %v on a full disk: %q does not say the disk is full", args, line)
	}
	return line
}

// TestAddDiskFull: an add bigger than the free space of the repository's
// file system fails with one clear line, leaves no pin and a repository
// that verifies and has its space back; once gc frees room, the same add
// succeeds.
func TestAddDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "64m")
	rp, work := filepath.Join(mnt, "repo"), t.TempDir()
	keep := filepath.Join(work, "keep")
	writeFile(t, keep, randBytes(t, 1<<20+7))
	kept := strings.TrimSpace(ok(t, rp, "add", "-Q", keep))
	junk := filepath.Join(work, "junk")
	writeFile(t, junk, randBytes(t, 24<<20))
	ok(t, rp, "add", "-Q", "--pin=false", junk)
	before := freeBytes(t, mnt)

	big := filepath.Join(work, "big")
	data := randBytes(t, 48<<20)
	writeFile(t, big, data)
	if before > 48<<20 {
		t.Fatalf("%d MiB free: the test needs less than the file", before>>20)
	}
	line := failsFull(t, rp, "add", "-Q", big)
	t.Logf("add of 48 MiB with %d MiB free: %s", before>>20, line)
	if after := freeBytes(t, mnt); after < before-1<<20 {
		t.Errorf("the failed add kept %d KiB of the space", (before-after)>>10)
	}
	ok(t, rp, "repo", "verify")
	if pins := ok(t, rp, "pin", "ls", "-q"); strings.TrimSpace(pins) != kept {
		t.Fatalf("pins after the failed add: %q, want only %s", pins, kept)
	}

	ok(t, rp, "gc")
	c := strings.TrimSpace(ok(t, rp, "add", "-Q", big))
	ok(t, rp, "pin", "verify")
	if got := run(t, rp, nil, "cat", c); !bytes.Equal([]byte(got.stdout), data) {
		t.Fatalf("cat after the add that fitted: %d bytes, %s", len(got.stdout), got.stderr)
	}
}

// TestGetDiskFull: a get that fills the repository's file system while it
// fetches from a daemon fails with one clear line and leaves a repository
// that verifies; once a filler file is removed, the same get succeeds.
func TestGetDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "64m")
	srv, work := t.TempDir(), t.TempDir()
	configureDaemon(t, srv, 0)
	d := startDaemonAt(t, srv)
	data := randBytes(t, 40<<20)
	src := filepath.Join(work, "f")
	writeFile(t, src, data)
	c := strings.TrimSpace(ok(t, srv, "add", "-Q", src))

	rp := filepath.Join(mnt, "repo")
	configureDaemon(t, rp, 0, d.addrs[0])
	filler := filepath.Join(mnt, "filler")
	writeFile(t, filler, randBytes(t, 32<<20))
	free := freeBytes(t, mnt)
	dst := filepath.Join(work, "out")
	line := failsFull(t, rp, "get", c, "-o", dst, "--timeout", "20s")
	t.Logf("get of 40 MiB with %d MiB free: %s", free>>20, line)
	if _, err := os.Lstat(dst); err == nil {
		t.Fatal("the failed get left its output behind")
	}
	ok(t, rp, "repo", "verify")

	os.Remove(filler)
	ok(t, rp, "get", c, "-o", dst, "--timeout", "20s")
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get after freeing space: %d different bytes (%v)", len(got), err)
	}
	ok(t, rp, "repo", "verify")
}
