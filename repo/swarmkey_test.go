package repo

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKeyHex = "dffb7e3135399a8b1612b2aaca1c36a3a8ac2cd0cca51ceeb2ced87d308cac6d"

func TestGenerateSwarmKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), SwarmKeyFile)
	if err := GenerateSwarmKey(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "/key/swarm/psk/1.0.0/\n/base16/\n") || len(data) != 22+9+64+1 {
		t.Errorf("unexpected file:\n%s", data)
	}
	key, err := LoadSwarmKey(path)
	if err != nil || key == nil {
		t.Fatalf("load: %v, %v", key, err)
	}
	if hex.EncodeToString(key[:]) != strings.TrimSpace(string(data[31:])) {
		t.Error("loaded key differs from the file")
	}
	err = GenerateSwarmKey(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite: got %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Fatal("existing key was changed")
	}
	other := filepath.Join(t.TempDir(), SwarmKeyFile)
	GenerateSwarmKey(other)
	if k2, _ := LoadSwarmKey(other); *k2 == *key {
		t.Fatal("two generated keys are equal")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestLoadSwarmKeyMissing(t *testing.T) {
	key, err := LoadSwarmKey(filepath.Join(t.TempDir(), SwarmKeyFile))
	if key != nil || err != nil {
		t.Fatalf("got %v, %v; want nil, nil", key, err)
	}
}

func TestParseSwarmKey(t *testing.T) {
	want, _ := hex.DecodeString(testKeyHex)
	b64 := base64.StdEncoding.EncodeToString(want)
	const hdr = "/key/swarm/psk/1.0.0/\n"
	good := []string{
		hdr + "/base16/\n" + testKeyHex,
		hdr + "/base16/\n" + testKeyHex + "\n",
		hdr + "/base16/\n" + strings.ToUpper(testKeyHex) + "\n",
		"/key/swarm/psk/1.0.0/\r\n/base16/\r\n" + testKeyHex + "\r\n",
		hdr + "/base64/\n" + b64 + "\n",
		hdr + "/bin/\n" + string(want),
	}
	for _, in := range good {
		got, err := parseSwarmKey([]byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
		} else if !bytes.Equal(got[:], want) {
			t.Errorf("%q: wrong key", in)
		}
	}
	bad := []struct{ in, err string }{
		{"", "line 1"},
		{"/key/swarm/psk/1.0.0/", "line 1"},
		{"/key/swarm/psk/2.0.0/\n/base16/\n" + testKeyHex, "line 1"},
		{" /key/swarm/psk/1.0.0/\n/base16/\n" + testKeyHex, "line 1"},
		{hdr + "/base16/", "line 2"},
		{hdr + "/base32/\n" + testKeyHex, "unknown encoding"},
		{hdr + "/base16/\n" + testKeyHex[:62], "want 64 hex digits"},
		{hdr + "/base16/\n" + testKeyHex + "00", "want 64 hex digits"},
		{hdr + "/base16/\n" + testKeyHex[:63] + "g", "base16"},
		{hdr + "/base16/\n" + testKeyHex + " ", "want 64 hex digits"},
		{hdr + "/base16/\n" + testKeyHex + "\n\n", "line 4"},
		{hdr + "/base16/\n" + testKeyHex + "\nextra", "line 4"},
		{hdr + "/base16/\n\n" + testKeyHex, "line 3"},
		{hdr + "/base64/\n" + b64[:40] + "\n", "line 3"},
		{hdr + "/base64/\n" + base64.StdEncoding.EncodeToString(want[:31]) + "\n", "31 bytes"},
		{hdr + "/bin/\n" + string(want) + "\n", "33 bytes"},
	}
	for _, tc := range bad {
		_, err := parseSwarmKey([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: got error %v, want one containing %q", tc.in, err, tc.err)
		}
	}
}

func TestLoadSwarmKeyErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SwarmKeyFile)
	os.WriteFile(path, []byte("/key/swarm/psk/1.0.0/\n/base16/\nxyz\n"), 0o600)
	if _, err := LoadSwarmKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want an error naming %s", err, path)
	}
	os.WriteFile(path, bytes.Repeat([]byte("a"), 5000), 0o600)
	if _, err := LoadSwarmKey(path); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("huge file: got %v", err)
	}
	if _, err := LoadSwarmKey(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("directory: got %v", err)
	}
}

// FuzzParseSwarmKey: the parser never panics, accepts only files that
// re-encode to a key of 32 bytes, and is stable on its own output.
func FuzzParseSwarmKey(f *testing.F) {
	f.Add([]byte("/key/swarm/psk/1.0.0/\n/base16/\n" + testKeyHex + "\n"))
	f.Add([]byte("/key/swarm/psk/1.0.0/\r\n/base64/\r\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\r\n"))
	f.Add([]byte("/key/swarm/psk/1.0.0/\n/bin/\n" + strings.Repeat("k", 32)))
	f.Add([]byte("/key/swarm/psk/1.0.0/\n/base16/\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parseSwarmKey(data)
		if err != nil {
			return
		}
		canon := "/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(key[:]) + "\n"
		again, err := parseSwarmKey([]byte(canon))
		if err != nil || again != key {
			t.Fatalf("canonical form %q does not parse back: %v", canon, err)
		}
		if !bytes.HasPrefix(data, []byte("/key/swarm/psk/1.0.0/")) {
			t.Fatalf("accepted %q without the header", data)
		}
	})
}
