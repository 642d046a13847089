package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// metaTree writes a tool tree: an executable script with a fixed time, a
// directory with one, a safe symlink and two unsafe ones.
func metaTree(t *testing.T, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "tools")
	writeFile(t, filepath.Join(root, "bin", "run"), []byte("#!/bin/sh\necho hi\n"))
	if err := os.Chmod(filepath.Join(root, "bin", "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"run": "bin/run", "passwd": "/etc/passwd", "bin/up": "../../x"} {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	when := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, p := range []string{"bin/run", "bin", ""} {
		if err := os.Chtimes(filepath.Join(root, p), when, when); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestGetMetadataAndSymlinks: add --preserve-mode --preserve-mtime
// records the executable bit and the times, which get restores and ls
// --json shows; get refuses the unsafe symlinks, one line each, writes the
// rest and exits 1; --no-symlinks and --allow-unsafe-links do what they
// say. Without a daemon and through one.
func TestGetMetadataAndSymlinks(t *testing.T) {
	for _, withDaemon := range []bool{false, true} {
		name := "local"
		if withDaemon {
			name = "daemon"
		}
		t.Run(name, func(t *testing.T) {
			rp, work := t.TempDir(), t.TempDir()
			if withDaemon {
				startDaemon(t, rp)
			}
			root := strings.TrimSpace(ok(t, rp, "add", "-Q", "-r", "--preserve-mode", "--preserve-mtime", metaTree(t, work)))
			checkLsMeta(t, rp, root+"/bin")

			out := filepath.Join(work, "out")
			r := run(t, rp, nil, "get", root, "-o", out)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			var refused []string
			for _, l := range lines {
				if strings.HasPrefix(l, "share: symlink ") {
					refused = append(refused, l)
				}
			}
			if r.code != 1 || len(refused) != 2 || !strings.Contains(r.stderr, out+"/passwd -> /etc/passwd not written: its target is absolute") ||
				!strings.Contains(r.stderr, out+"/bin/up -> ../../x not written: its target leads out") {
				t.Fatalf("get: exit %d, stderr:\n%s", r.code, r.stderr)
			}
			fi, err := os.Stat(filepath.Join(out, "bin", "run"))
			if err != nil {
				t.Fatal(err)
			}
			umask := os.FileMode(syscall.Umask(0))
			syscall.Umask(int(umask))
			if want := 0o755 &^ umask; fi.Mode() != want {
				t.Errorf("bin/run: mode %v, want %v", fi.Mode(), want)
			}
			if want := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC); !fi.ModTime().Equal(want) {
				t.Errorf("bin/run: mtime %v, want %v", fi.ModTime(), want)
			}
			if di, err := os.Stat(filepath.Join(out, "bin")); err != nil || !di.ModTime().Equal(fi.ModTime()) {
				t.Errorf("bin: mtime %v, %v: a directory's time is set after its contents", di.ModTime(), err)
			}
			if target, err := os.Readlink(filepath.Join(out, "run")); err != nil || target != "bin/run" {
				t.Errorf("run -> %q, %v", target, err)
			}

			none := filepath.Join(work, "none")
			ok(t, rp, "get", root, "-o", none, "--no-symlinks")
			if _, err := os.Lstat(filepath.Join(none, "run")); err == nil {
				t.Error("--no-symlinks wrote a symlink")
			}
			all := filepath.Join(work, "all")
			ok(t, rp, "get", root, "-o", all, "--allow-unsafe-links")
			if target, err := os.Readlink(filepath.Join(all, "passwd")); err != nil || target != "/etc/passwd" {
				t.Errorf("--allow-unsafe-links: passwd -> %q, %v", target, err)
			}
		})
	}
}

// checkLsMeta checks that ls --json shows the mode and time of bin/run.
func checkLsMeta(t *testing.T, rp, dir string) {
	t.Helper()
	var e struct {
		Name, Mode string
		Mtime      time.Time
	}
	for _, line := range strings.Split(strings.TrimSpace(ok(t, rp, "ls", "--json", dir)), "\n") {
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Name == "run" {
			break
		}
	}
	if e.Name != "run" || e.Mode != "0755" || !e.Mtime.Equal(time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)) {
		t.Errorf("ls --json: %+v, want run with Mode 0755 and the time", e)
	}
}

// TestGetSparse: a sparse file comes back sparse, with the same bytes.
func TestGetSparse(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	src := filepath.Join(work, "disk.img")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("boot"), 0)
	f.WriteAt([]byte("end"), 300<<20)
	if err := f.Truncate(512 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	root := strings.TrimSpace(ok(t, rp, "add", "-Q", src))
	out := filepath.Join(work, "out.img")
	ok(t, rp, "get", root, "-o", out)
	var st syscall.Stat_t
	if err := syscall.Stat(out, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 512<<20 || st.Blocks*512 > 4<<20 {
		t.Fatalf("out: %d bytes, %d allocated: want 512 MiB in at most 4 MiB", st.Size, st.Blocks*512)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(out)
	if string(a) != string(b) {
		t.Fatal("the bytes differ")
	}
}
