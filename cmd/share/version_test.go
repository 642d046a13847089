package main

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// TestVersion: `share version` and `share --version` print the same
// version, Go release and protocols; --json has them as fields.
func TestVersion(t *testing.T) {
	rp := t.TempDir()
	human := ok(t, rp, "version")
	if flag := ok(t, rp, "--version"); flag != human {
		t.Errorf("--version printed %q, version %q", flag, human)
	}
	for _, want := range []string{"share " + version + "\n", runtime.Version(), "/share/blocks/1.0.0", "/ipfs/bitswap/1.2.0", "/tls/1.0.0"} {
		if !strings.Contains(human, want) {
			t.Errorf("version lacks %q:\n%s", want, human)
		}
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(ok(t, rp, "version", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != version || v.Go != runtime.Version() || !slices.Contains(v.Protocols["share"], "/share/kad/1.0.0") ||
		!slices.Contains(v.Protocols["ipfs"], "/ipfs/kad/1.0.0") || !slices.Contains(v.Transport, "/yamux/1.0.0") {
		t.Errorf("version --json: %+v", v)
	}
}

// TestBuildCommit: the commit comes from the build's VCS settings.
func TestBuildCommit(t *testing.T) {
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "5be9fd7"}, {Key: "vcs.modified", Value: "true"},
	}}
	if c, m := buildCommit(bi); c != "5be9fd7" || !m {
		t.Errorf("buildCommit = %q, %v", c, m)
	}
	if c, m := buildCommit(&debug.BuildInfo{}); c != "" || m {
		t.Errorf("buildCommit of a build without VCS = %q, %v", c, m)
	}
}
