package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// smallDisk mounts a tmpfs of size (e.g. "96m") for the test; it needs
// root, and fails instead of skipping when SHARE_REQUIRE_LAB is set (CI).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("SHARE_REQUIRE_LAB") != "" {
			t.Fatal("the full-disk test needs root to mount a tmpfs")
		}
		t.Skip("the full-disk test needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestFullDisk: add and get on a full disk fail with one clear line, the
// repository stays consistent, and both work once space is freed.
func TestFullDisk(t *testing.T) {
	disk := smallDisk(t, "96m")
	rp := filepath.Join(disk, "repo")
	work := t.TempDir()
	ok(t, rp, "init")
	filler := filepath.Join(disk, "filler")
	fill := func() { writeFile(t, filler, make([]byte, 60<<20)) }

	data := randBytes(t, 16<<20)
	src := filepath.Join(work, "f.bin")
	writeFile(t, src, data)
	fill()
	fails(t, rp, "disk is full", "add", src)
	ok(t, rp, "repo", "verify")
	if pins := ok(t, rp, "pin", "ls"); pins != "" {
		t.Fatalf("a failed add left a pin: %q", pins)
	}
	os.Remove(filler)
	c := strings.TrimSpace(ok(t, rp, "add", "-Q", src))
	ok(t, rp, "pin", "rm", c)
	ok(t, rp, "gc")

	// get: the blocks come from a daemon whose repository is elsewhere.
	srv := t.TempDir()
	d := startDaemon(t, srv)
	if got := strings.TrimSpace(ok(t, srv, "add", "-Q", src)); got != c {
		t.Fatalf("same bytes, CID %s then %s", c, got)
	}
	ok(t, rp, "config", "set", "Discovery.MDNS", "false")
	ok(t, rp, "config", "set", "Bootstrap", `["`+d.addrs[0]+`"]`)
	fill()
	dst := filepath.Join(work, "out.bin")
	fails(t, rp, "disk is full", "get", c, "-o", dst, "--timeout", "10s")
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("a failed get left its output")
	}
	ok(t, rp, "repo", "verify")
	os.Remove(filler)
	ok(t, rp, "get", c, "-o", dst, "--timeout", "10s")
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("get after freeing space: different bytes")
	}
	ok(t, rp, "repo", "verify")

	// Something else fills the disk to the last byte: the repository still
	// opens (read-only) at once, reads work, writes say the disk is full.
	// (Pebble used to retry its flush forever on open.)
	full := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=1M", "count=200")
	full.Run() // stops at ENOSPC
	ok(t, rp, "repo", "verify")
	fails(t, rp, "disk is full", "add", src)
	os.Remove(filler)
	ok(t, rp, "add", "-Q", src)
	ok(t, rp, "repo", "verify")
}
