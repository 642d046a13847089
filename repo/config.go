package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/chunker"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
)

// Config is the content of config.json. Every field has a documented
// default (see Default) and is validated on load.
type Config struct {
	// Network is the network name, part of every protocol ID, so that
	// separate networks never exchange records or blocks.
	Network   string
	Addresses struct {
		// Listen lists the multiaddrs the daemon listens on.
		Listen []string
		// Gateway is the read-only HTTP gateway's host:port ("" = off).
		Gateway string
	}
	Discovery struct {
		// MDNS announces and finds peers on the LAN.
		MDNS bool
	}
	// Bootstrap lists multiaddrs (with /p2p/ID) dialled at start.
	Bootstrap []string
	Routing   struct {
		// Mode is the DHT mode: auto, server, client or off.
		Mode string
		// Alpha is how many requests a DHT lookup keeps in flight (1-64).
		Alpha int
	}
	// AutoNAT is how the node learns whether the internet can reach it
	// (AutoNAT v2, kubo's section name).
	AutoNAT struct {
		// ServiceMode "enabled" answers other nodes' reachability checks;
		// "disabled" does not (the node still checks its own).
		ServiceMode string
		// Confirmations is how many AutoNAT servers must agree that an
		// address is reachable, or is not, before the node believes it
		// (1-20).
		Confirmations int
	}
	Provide struct {
		// Strategy says what add announces: roots, all or none.
		Strategy string
	}
	Datastore struct {
		// StorageMax triggers auto-GC above this size ("10GB").
		StorageMax string
	}
	// Import sets add's format when its flags do not, as kubo's Import
	// section does (same names); null keeps share's defaults. A user who
	// wants kubo's CIDs for every add sets CidVersion 0 here once.
	// Unset keys are left out of config.json (and of `config show`).
	Import struct {
		CidVersion      *int    `json:",omitempty"` // 0 or 1 (--cid-version)
		HashFunction    *string `json:",omitempty"` // "blake3" or "sha2-256" (--hash)
		UnixFSRawLeaves *bool   `json:",omitempty"` // --raw-leaves
		UnixFSChunker   *string `json:",omitempty"` // "size-N" (--chunker)
	}
	// Relay is circuit relay v2: the service relays connections for peers
	// behind NATs, the client reserves slots on relays so that peers can
	// reach this node through them. The limits are the service's.
	Relay struct {
		// Service is "auto" (on only while the node is publicly
		// reachable), "on" or "off".
		Service string
		// Client is "auto" (reserve only while the node is behind a NAT),
		// "on" or "off". Dialling peers through relays is always on.
		Client string
		// StaticRelays are relays (multiaddrs with /p2p/ID) the client
		// reserves on first; then connected peers that offer relaying.
		StaticRelays []string
		// KeepReservations is how many reservations the client holds.
		KeepReservations int
		// Reservations bounds the reservations the service holds,
		// ReservationsPerIP those of one IP address.
		Reservations, ReservationsPerIP int
		// ReservationTTL is how long a reservation lasts unless renewed.
		ReservationTTL string
		// Circuits bounds the service's open circuits, CircuitsPerPeer
		// those one peer is an end of.
		Circuits, CircuitsPerPeer int
		// CircuitDuration ends a circuit after this long ("0": never).
		CircuitDuration string
		// CircuitBytes ends a circuit once this many bytes went one way
		// (0: no limit, a relay that carries bulk data).
		CircuitBytes int64
	}
	// Pubsub is gossipsub, the publish/subscribe protocol of kubo's
	// `ipfs pubsub` (/meshsub/1.1.0 on network ipfs).
	Pubsub struct {
		// Enabled serves pubsub and opens a pubsub stream to every peer
		// that speaks it. On by default: a node subscribed to nothing
		// only exchanges its (empty) subscription list, and following a
		// name needs it.
		Enabled bool
	}
	// Follow lists the names the daemon follows, each into a folder (see
	// FollowConfig; share follow does the same in the foreground).
	Follow []FollowConfig
	// Limits bound what peers may use of this node; a peer over a limit is
	// throttled or disconnected. Zero means the default.
	Limits struct {
		// ConnsInbound and ConnsOutbound bound connections by direction.
		ConnsInbound, ConnsOutbound int
		// StreamsPerPeer bounds the inbound streams one peer may hold open.
		StreamsPerPeer int
		// RequestsPerPeer bounds the block requests of one peer the
		// exchange queues; it reads no more until some are answered.
		RequestsPerPeer int
		// BufferedBytesPerPeer bounds the block bytes loaded for one peer
		// ahead of sending them.
		BufferedBytesPerPeer int
		// DHTRecordsPerPeer bounds the provider records one peer may store
		// here.
		DHTRecordsPerPeer int
		// MaxBlockBytes bounds the blocks this node sends or accepts (at
		// most 4 MiB, the protocol's limit); a larger frame cuts the peer
		// off. Content chunked larger cannot be exchanged.
		MaxBlockBytes int
		// MaxDHTMessageBytes bounds every DHT message read (at most 4 MiB).
		MaxDHTMessageBytes int
	}
}

// DefaultLimits are the limits of a fresh repository.
var DefaultLimits = struct {
	ConnsInbound, ConnsOutbound, StreamsPerPeer, RequestsPerPeer, BufferedBytesPerPeer, DHTRecordsPerPeer int
	MaxBlockBytes, MaxDHTMessageBytes                                                                     int
}{1024, 1024, 512, 256, 8 << 20, 50000, 4 << 20, 4 << 20}

// Default returns the configuration of a fresh repository.
func Default() *Config {
	c := &Config{Network: "share"}
	c.Addresses.Listen = []string{"/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"}
	c.Addresses.Gateway = "127.0.0.1:8080"
	c.Discovery.MDNS = true
	c.Pubsub.Enabled = true
	c.Follow = []FollowConfig{}
	c.Bootstrap = []string{}
	c.Routing.Mode = "auto"
	c.Routing.Alpha = 10
	c.Provide.Strategy = "roots"
	c.AutoNAT.ServiceMode = "enabled"
	c.AutoNAT.Confirmations = 3
	c.Datastore.StorageMax = "10GB"
	r := &c.Relay
	r.Service, r.Client, r.StaticRelays, r.KeepReservations = "auto", "auto", []string{}, 2
	r.Reservations, r.ReservationsPerIP, r.ReservationTTL = 128, 8, "1h"
	r.Circuits, r.CircuitsPerPeer, r.CircuitDuration, r.CircuitBytes = 64, 16, "2m", 128<<10
	l := &c.Limits
	l.ConnsInbound, l.ConnsOutbound = DefaultLimits.ConnsInbound, DefaultLimits.ConnsOutbound
	l.StreamsPerPeer, l.RequestsPerPeer = DefaultLimits.StreamsPerPeer, DefaultLimits.RequestsPerPeer
	l.BufferedBytesPerPeer, l.DHTRecordsPerPeer = DefaultLimits.BufferedBytesPerPeer, DefaultLimits.DHTRecordsPerPeer
	l.MaxBlockBytes, l.MaxDHTMessageBytes = DefaultLimits.MaxBlockBytes, DefaultLimits.MaxDHTMessageBytes
	return c
}

// ErrUnknownKey is returned by Get and Set for keys that are not in the
// configuration (kind errs.NotFound).
var ErrUnknownKey = errs.New(errs.NotFound, "unknown config key")

var networkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

// Validate checks every field and names the first bad one, in an error of
// kind errs.Invalid.
func (c *Config) Validate() error {
	if !networkName.MatchString(c.Network) {
		return errs.Errorf(errs.Invalid, "config Network %q: want 1-64 letters, digits, '.', '_' or '-'", c.Network)
	}
	for _, a := range c.Addresses.Listen {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return errs.Errorf(errs.Invalid, "config Addresses.Listen %q: %v", a, err)
		}
	}
	if g := c.Addresses.Gateway; g != "" {
		if i := strings.LastIndexByte(g, ':'); i < 0 {
			return errs.Errorf(errs.Invalid, "config Addresses.Gateway %q: want host:port or \"\"", g)
		} else if p, err := strconv.Atoi(g[i+1:]); err != nil || p < 0 || p > 65535 {
			return errs.Errorf(errs.Invalid, "config Addresses.Gateway %q: bad port", g)
		}
	}
	for _, b := range c.Bootstrap {
		m, err := ma.NewMultiaddr(b)
		if err != nil {
			return errs.Errorf(errs.Invalid, "config Bootstrap %q: %v", b, err)
		}
		if _, err := m.ValueForProtocol(ma.P_P2P); err != nil {
			return errs.Errorf(errs.Invalid, "config Bootstrap %q: needs a /p2p/ID part", b)
		}
	}
	switch c.Routing.Mode {
	case "auto", "server", "client", "off":
	default:
		return errs.Errorf(errs.Invalid, "config Routing.Mode %q: want auto, server, client or off", c.Routing.Mode)
	}
	if c.Routing.Alpha < 1 || c.Routing.Alpha > 64 {
		return errs.Errorf(errs.Invalid, "config Routing.Alpha %d: not between 1 and 64", c.Routing.Alpha)
	}
	switch c.AutoNAT.ServiceMode {
	case "enabled", "disabled":
	default:
		return errs.Errorf(errs.Invalid, "config AutoNAT.ServiceMode %q: want enabled or disabled", c.AutoNAT.ServiceMode)
	}
	if n := c.AutoNAT.Confirmations; n < 1 || n > 20 {
		return errs.Errorf(errs.Invalid, "config AutoNAT.Confirmations %d: not between 1 and 20", n)
	}
	switch c.Provide.Strategy {
	case "roots", "all", "none":
	default:
		return errs.Errorf(errs.Invalid, "config Provide.Strategy %q: want roots, all or none", c.Provide.Strategy)
	}
	if _, err := ParseSize(c.Datastore.StorageMax); err != nil {
		return errs.Errorf(errs.Invalid, "config Datastore.StorageMax: %v", err)
	}
	if err := c.validateImport(); err != nil {
		return err
	}
	if err := c.validateRelay(); err != nil {
		return err
	}
	if err := c.validateFollow(); err != nil {
		return err
	}
	for name, v := range map[string]int{
		"ConnsInbound": c.Limits.ConnsInbound, "ConnsOutbound": c.Limits.ConnsOutbound,
		"StreamsPerPeer": c.Limits.StreamsPerPeer, "RequestsPerPeer": c.Limits.RequestsPerPeer,
		"BufferedBytesPerPeer": c.Limits.BufferedBytesPerPeer, "DHTRecordsPerPeer": c.Limits.DHTRecordsPerPeer,
	} {
		if v < 0 {
			return errs.Errorf(errs.Invalid, "config Limits.%s: %d is negative (0 means the default)", name, v)
		}
	}
	if b := c.Limits.BufferedBytesPerPeer; b != 0 && b < 4<<20+256 {
		return errs.Errorf(errs.Invalid, "config Limits.BufferedBytesPerPeer: %d is below one largest block (4 MiB)", b)
	}
	for name, v := range map[string]int{"MaxBlockBytes": c.Limits.MaxBlockBytes, "MaxDHTMessageBytes": c.Limits.MaxDHTMessageBytes} {
		if v != 0 && (v < 64<<10 || v > 4<<20) {
			return errs.Errorf(errs.Invalid, "config Limits.%s: %d not between 65536 and 4194304", name, v)
		}
	}
	return nil
}

// validateRelay checks the Relay section.
func (c *Config) validateRelay() error {
	r := &c.Relay
	for name, v := range map[string]string{"Service": r.Service, "Client": r.Client} {
		if v != "auto" && v != "on" && v != "off" {
			return errs.Errorf(errs.Invalid, "config Relay.%s %q: want auto, on or off", name, v)
		}
	}
	for _, a := range r.StaticRelays {
		m, err := ma.NewMultiaddr(a)
		if err == nil {
			_, err = m.ValueForProtocol(ma.P_P2P)
		}
		if err != nil {
			return errs.Errorf(errs.Invalid, "config Relay.StaticRelays %q: want a multiaddr with /p2p/ID (%v)", a, err)
		}
	}
	for name, v := range map[string]int{"KeepReservations": r.KeepReservations, "Reservations": r.Reservations,
		"ReservationsPerIP": r.ReservationsPerIP, "Circuits": r.Circuits, "CircuitsPerPeer": r.CircuitsPerPeer} {
		if v < 1 || v > 1<<20 {
			return errs.Errorf(errs.Invalid, "config Relay.%s: %d not between 1 and 1048576", name, v)
		}
	}
	if r.CircuitBytes < 0 {
		return errs.Errorf(errs.Invalid, "config Relay.CircuitBytes: %d is negative (0 means no limit)", r.CircuitBytes)
	}
	if d, err := time.ParseDuration(r.ReservationTTL); err != nil || d < time.Minute {
		return errs.Errorf(errs.Invalid, "config Relay.ReservationTTL %q: want a duration of at least 1m", r.ReservationTTL)
	}
	if d, err := time.ParseDuration(r.CircuitDuration); err != nil || d != 0 && d < time.Second {
		return errs.Errorf(errs.Invalid, "config Relay.CircuitDuration %q: want 0 (no limit) or a duration of at least 1s", r.CircuitDuration)
	}
	return nil
}

// RelayDurations returns Relay.ReservationTTL and Relay.CircuitDuration,
// parsed (the config is valid: Validate checked them).
func (c *Config) RelayDurations() (ttl, circuit time.Duration) {
	ttl, _ = time.ParseDuration(c.Relay.ReservationTTL)
	circuit, _ = time.ParseDuration(c.Relay.CircuitDuration)
	return ttl, circuit
}

// validateImport checks the Import section as add will apply it.
func (c *Config) validateImport() error {
	im := c.Import
	if v := im.CidVersion; v != nil && *v != 0 && *v != 1 {
		return errs.Errorf(errs.Invalid, "config Import.CidVersion %d: want 0 or 1", *v)
	}
	if _, err := c.ImportFormat().Format(); err != nil {
		return errs.Errorf(errs.Invalid, "config Import: %v", err)
	}
	if ch := im.UnixFSChunker; ch != nil {
		if _, err := chunker.Parse(*ch); err != nil {
			return errs.Errorf(errs.Invalid, "config Import.UnixFSChunker: %v", err)
		}
	}
	return nil
}

// ImportFormat is the Import section's format settings.
func (c *Config) ImportFormat() dag.FormatOptions {
	f := dag.FormatOptions{CIDVersion: c.Import.CidVersion, RawLeaves: c.Import.UnixFSRawLeaves}
	if h := c.Import.HashFunction; h != nil {
		f.Hash = *h
	}
	return f
}

// ParseSize parses sizes such as "10GB", "512MiB", "1000000" into bytes.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, errs.Errorf(errs.Invalid, "bad size %q: want a number with an optional unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s)
	}
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}[unit]
	if mult == 0 {
		return 0, errs.Errorf(errs.Invalid, "bad size %q: unknown unit %q", s, t[i:])
	}
	return int64(f * mult), nil
}

// LoadConfig reads and validates a config file. Unknown fields are errors.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := decodeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func decodeConfig(b []byte) (*Config, error) {
	c := Default()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, errs.E(errs.Invalid, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// WriteConfig writes c to path atomically (temp file, fsync, rename).
func WriteConfig(path string, c *Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o644)
}

// Get returns the JSON value of a dotted key ("Addresses.Listen").
func (c *Config) Get(key string) (json.RawMessage, error) {
	m, err := c.tree()
	if err != nil {
		return nil, err
	}
	v, err := lookup(m, key)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// Set sets a dotted key and returns the new, validated configuration; c is
// unchanged. value is parsed as JSON where it parses, else taken as a string.
func (c *Config) Set(key, value string) (*Config, error) {
	m, err := c.tree()
	if err != nil {
		return nil, err
	}
	old, err := lookup(m, key)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		v = value
	}
	if _, isString := old.(string); isString {
		if _, ok := v.(string); !ok {
			v = value // "Gateway 8080" keeps meaning the string the user typed
		}
	}
	parts := strings.Split(key, ".")
	parent := m
	for _, p := range parts[:len(parts)-1] {
		parent = parent[p].(map[string]any)
	}
	parent[parts[len(parts)-1]] = v
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	nc, err := decodeConfig(b)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, errs.Errorf(errs.Invalid, "config %s: value %s has the wrong type (want %s)", key, value, te.Type)
		}
		return nil, err
	}
	return nc, nil
}

// Keys lists every settable dotted key.
func (c *Config) Keys() []string {
	m, _ := c.tree()
	var keys []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			keys = append(keys, prefix+k)
		}
	}
	walk("", m)
	sort.Strings(keys)
	return keys
}

func (c *Config) tree() (map[string]any, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	// The Import keys are there to get and set even while unset.
	im, _ := m["Import"].(map[string]any)
	for _, k := range importKeys {
		if _, ok := im[k]; !ok && im != nil {
			im[k] = nil
		}
	}
	return m, nil
}

// importKeys are the keys of the Import section, left out while unset.
var importKeys = []string{"CidVersion", "HashFunction", "UnixFSRawLeaves", "UnixFSChunker"}

// unknownKey says which key is not there and where the keys are listed: the
// hint is part of the error, so that it reads the same through a daemon.
func unknownKey(key string) error {
	return fmt.Errorf("%w %q (see 'share config show' for the keys)", ErrUnknownKey, key)
}

func lookup(m map[string]any, key string) (any, error) {
	var cur any = m
	for _, p := range strings.Split(key, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, unknownKey(key)
		}
		if cur, ok = mm[p]; !ok {
			return nil, unknownKey(key)
		}
	}
	if _, ok := cur.(map[string]any); ok {
		return cur, nil // a section: readable, and Set replaces it whole
	}
	return cur, nil
}
