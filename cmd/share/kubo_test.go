package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAddKuboFlags: kubo's add flags give kubo's CIDs (kubo 0.43.1 printed
// these for "hello world\n"), and contradicting ones are a usage error
// naming both.
func TestAddKuboFlags(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	hello := filepath.Join(work, "hello.txt")
	writeFile(t, hello, []byte("hello world\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cid-version", "0"}, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"},
		{[]string{"--cid-version=1", "--hash=sha2-256"}, "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"},
		{[]string{"--cid-version=1", "--hash=sha2-256", "--raw-leaves=false"}, "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby"},
		{[]string{"--raw-leaves=false"}, "bafyb4ien7vqb3omnp5nbjeq4cdu3ktvggiv3istxa7hztruud53ghfvriu"},
		{nil, "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"},
	} {
		args := append(append([]string{"add", "-Q"}, tc.args...), hello)
		if got := ok(t, rp, args...); got != tc.want+"\n" {
			t.Errorf("add %q printed %q, want %s", tc.args, got, tc.want)
		}
	}
	fails(t, rp, "--cid-version 0 and --hash blake3", "add", "--cid-version", "0", "--hash", "blake3", hello)
	fails(t, rp, "raw leaves cannot carry UnixFS metadata", "add", "--preserve-mode", "--raw-leaves", hello)
}

// TestAddKuboMetadata: --preserve-mode --preserve-mtime give kubo's CIDs
// (kubo 0.43.1 printed these for "hello world\n", mode 0755, time
// 2020-01-02T03:04:05.5Z, with the same flags).
func TestAddKuboMetadata(t *testing.T) {
	rp, work := t.TempDir(), t.TempDir()
	hello := filepath.Join(work, "hello.txt")
	writeFile(t, hello, []byte("hello world\n"))
	when := time.Date(2020, 1, 2, 3, 4, 5, 5e8, time.UTC)
	if err := os.Chmod(hello, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(hello, when, when); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cid-version", "0"}, "QmTAZdW2TYGcTZZjYqPK6EB1wMFqPJbK84fFNmsjdBcMRf"},
		{[]string{"--hash=sha2-256"}, "bafybeichwtrbyg6w6q44vfyzue5iotk4od62ciupjed75yz4xvlvuewgpy"},
		{nil, "bafyb4ibvspomwbxw6t6bqctbvk5oiablurujpwirrrv3kkpof2ovj5dxgi"},
	} {
		args := append(append([]string{"add", "-Q", "--preserve-mode", "--preserve-mtime"}, tc.args...), hello)
		if got := ok(t, rp, args...); got != tc.want+"\n" {
			t.Errorf("add %q printed %q, want %s", tc.args, got, tc.want)
		}
	}
	fails(t, rp, `--hash "md5"`, "add", "--hash", "md5", hello)
}
