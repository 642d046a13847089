package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/share-p2p/share/errs"
)

func TestConfigSetGet(t *testing.T) {
	tests := []struct {
		key, value, want string // want "" = error expected
		errHas           string
	}{
		{"Network", "lab", `"lab"`, ""},
		{"Network", "bad/name", "", "Network"},
		{"Discovery.MDNS", "false", "false", ""},
		{"Discovery.MDNS", "maybe", "", "wrong type"},
		{"Addresses.Gateway", "", `""`, ""},
		{"Addresses.Gateway", "127.0.0.1:99999", "", "bad port"},
		{"Addresses.Listen", `["/ip4/127.0.0.1/tcp/0"]`, `["/ip4/127.0.0.1/tcp/0"]`, ""},
		{"Addresses.Listen", `["/nonsense"]`, "", "Addresses.Listen"},
		{"Bootstrap", `["/ip4/1.2.3.4/tcp/4001"]`, "", "/p2p"},
		{"Routing.Mode", "client", `"client"`, ""},
		{"Routing.Mode", "sideways", "", "Routing.Mode"},
		{"Routing.Alpha", "3", "3", ""},
		{"AutoNAT.ServiceMode", "disabled", `"disabled"`, ""},
		{"AutoNAT.ServiceMode", "sometimes", "", "want enabled or disabled"},
		{"AutoNAT.Confirmations", "1", "1", ""},
		{"AutoNAT.Confirmations", "0", "", "not between 1 and 20"},
		{"Routing.Alpha", "0", "", "not between 1 and 64"},
		{"Provide.Strategy", "all", `"all"`, ""},
		{"Datastore.StorageMax", "512MiB", `"512MiB"`, ""},
		{"Datastore.StorageMax", "lots", "", "StorageMax"},
		{"Limits.ConnsInbound", "50", "50", ""},
		{"Limits.StreamsPerPeer", "-1", "", "negative"},
		{"Limits.BufferedBytesPerPeer", "1000", "", "below one largest block"},
		{"Limits.MaxBlockBytes", "1048576", "1048576", ""},
		{"Limits.MaxBlockBytes", "5000000", "", "not between"},
		{"Limits.MaxDHTMessageBytes", "100", "", "not between"},
		{"Nope", "1", "", "unknown config key"},
		{"Discovery.Nope", "1", "", "unknown config key"},
	}
	for _, tt := range tests {
		c, err := Default().Set(tt.key, tt.value)
		if tt.want == "" {
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Set(%s, %s) = %v, want error containing %q", tt.key, tt.value, err, tt.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("Set(%s, %s): %v", tt.key, tt.value, err)
			continue
		}
		got, err := c.Get(tt.key)
		if err != nil || string(got) != tt.want {
			t.Errorf("after Set(%s, %s): Get = %s, %v; want %s", tt.key, tt.value, got, err, tt.want)
		}
	}
	if _, err := Default().Get("Nope"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Get(Nope) = %v, want ErrUnknownKey", err)
	}
}

func TestConfigFileRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	c, _ := Default().Set("Network", "x")
	if err := WriteConfig(p, c); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(p)
	if err != nil || got.Network != "x" || !got.Discovery.MDNS {
		t.Fatalf("LoadConfig = %+v, %v", got, err)
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{"10GB": 10e9, "512MiB": 512 << 20, "1000": 1000, "1.5KB": 1500, "2 TiB": 2 << 40} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GB", "-1GB", "10XB", "1e9"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) succeeded", s)
		}
	}
}

func TestOpenLocksAndInits(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open = %v, want ErrInUse", err)
	}
	id := r.Identity.ID
	r.Close()
	r, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Identity.ID != id {
		t.Fatal("identity changed across opens")
	}
}

// TestInUseNamesHolder: a repository found in use names the process that
// holds it, which Lock wrote down.
func TestInUseNamesHolder(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := Holder(dir); got != os.Getpid() {
		t.Errorf("Holder = %d, want this process, %d", got, os.Getpid())
	}
	want := fmt.Sprintf("(pid %d)", os.Getpid())
	for _, open := range []func() error{
		func() error { _, err := Open(dir); return err },
		func() error { _, err := Lock(dir); return err },
	} {
		if err := open(); !errors.Is(err, ErrInUse) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("repository in use: %v, want ErrInUse ending %q", err, want)
		}
	}
}

// TestErrorKinds: the errors a user can cause have kinds, so that every
// surface says the same about them, and the unknown key's hint is in its
// text (it reads the same through a daemon).
func TestErrorKinds(t *testing.T) {
	_, unknownGet := Default().Get("Nope.Key")
	_, unknownSet := Default().Set("Foo.Bar", "1")
	_, badValue := Default().Set("Routing.Mode", "sideways")
	_, wrongType := Default().Set("Discovery.MDNS", `"maybe"`)
	_, badSize := Default().Set("Datastore.StorageMax", "12XB")
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, inUse := Open(dir)
	_, lockInUse := Lock(dir)
	for _, tc := range []struct {
		name string
		err  error
		kind errs.Kind
		has  string
	}{
		{"unknown key (get)", unknownGet, errs.NotFound, `unknown config key "Nope.Key" (see 'share config show' for the keys)`},
		{"unknown key (set)", unknownSet, errs.NotFound, `unknown config key "Foo.Bar" (see 'share config show' for the keys)`},
		{"bad value", badValue, errs.Invalid, "config Routing.Mode"},
		{"wrong type", wrongType, errs.Invalid, "wrong type"},
		{"bad size", badSize, errs.Invalid, "bad size"},
		{"open in use", inUse, errs.InUse, "in use"},
		{"lock in use", lockInUse, errs.InUse, "in use"},
	} {
		if tc.err == nil || errs.KindOf(tc.err) != tc.kind || !strings.Contains(tc.err.Error(), tc.has) {
			t.Errorf("%s: %v (kind %v), want kind %v and %q", tc.name, tc.err, errs.KindOf(tc.err), tc.kind, tc.has)
		}
	}
	if !errors.Is(unknownSet, ErrUnknownKey) || !errors.Is(inUse, ErrInUse) {
		t.Error("the sentinels no longer match")
	}
}

func TestConfigRelay(t *testing.T) {
	ok := []struct{ key, value string }{
		{"Relay.Service", "on"}, {"Relay.Client", "off"}, {"Relay.CircuitDuration", "0"},
		{"Relay.CircuitBytes", "0"}, {"Relay.ReservationTTL", "30m"},
		{"Relay.StaticRelays", `["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"]`},
	}
	for _, tt := range ok {
		if _, err := Default().Set(tt.key, tt.value); err != nil {
			t.Errorf("Set(%s, %s): %v", tt.key, tt.value, err)
		}
	}
	bad := []struct{ key, value, errHas string }{
		{"Relay.Service", "maybe", "Relay.Service"},
		{"Relay.CircuitDuration", "10ms", "Relay.CircuitDuration"},
		{"Relay.ReservationTTL", "5s", "Relay.ReservationTTL"},
		{"Relay.CircuitBytes", "-1", "Relay.CircuitBytes"},
		{"Relay.Circuits", "0", "Relay.Circuits"},
		{"Relay.StaticRelays", `["/ip4/203.0.113.7/tcp/4001"]`, "Relay.StaticRelays"},
	}
	for _, tt := range bad {
		if _, err := Default().Set(tt.key, tt.value); err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("Set(%s, %s) = %v, want an error naming %s", tt.key, tt.value, err, tt.errHas)
		}
	}
	ttl, circuit := Default().RelayDurations()
	if ttl != time.Hour || circuit != 2*time.Minute {
		t.Errorf("default relay durations %s, %s; want 1h, 2m", ttl, circuit)
	}
}
