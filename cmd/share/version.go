package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/bitswap"
	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/sec"
)

// versionInfo is what `share version` prints: enough for a bug report,
// and to tell whether two nodes can talk.
type versionInfo struct {
	Version string
	Go      string
	// Commit is the VCS revision the binary was built from ("" when the
	// build did not record it: go install of a module version, go run).
	Commit   string `json:",omitempty"`
	Modified bool   `json:",omitempty"` // built from a tree with changes
	// Transport is the connection stack, the same on every network.
	Transport []string
	// Protocols maps a network name to the protocols a node on it speaks;
	// a network of another name (Network in the config) speaks share's
	// under its name (/NAME/blocks/1.0.0, ...).
	Protocols map[string][]string
}

// buildVersion describes this binary.
func buildVersion() versionInfo {
	v := versionInfo{
		Version:   version,
		Go:        runtime.Version(),
		Transport: []string{mss.ProtocolID, sec.ProtocolID, p2p.MuxerProtocol},
		Protocols: map[string][]string{
			p2p.DefaultNetwork: networkProtocols(p2p.DefaultNetwork),
			"ipfs": append(networkProtocols("ipfs"), dht.LANProtocol("ipfs"),
				bitswap.Protocol120, bitswap.Protocol110, bitswap.Protocol100),
		},
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Commit, v.Modified = buildCommit(bi)
	}
	return v
}

// buildCommit returns the commit a build recorded ("" if none) and
// whether its tree had changes.
func buildCommit(bi *debug.BuildInfo) (commit string, modified bool) {
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return commit, modified
}

// networkProtocols are the protocols of share's own on a network.
func networkProtocols(network string) []string {
	return []string{
		p2p.ProtocolID(network, "blocks", "1.0.0"),
		dht.Protocol(network),
		p2p.ProtocolID(network, "id", "1.0.0"),
		p2p.ProtocolID(network, "ping", "1.0.0"),
	}
}

// String is the human form: one "name: value" line each.
func (v versionInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "share %s\ngo:        %s\n", v.Version, v.Go)
	if v.Commit != "" {
		mod := ""
		if v.Modified {
			mod = " (modified)"
		}
		fmt.Fprintf(&b, "commit:    %s%s\n", v.Commit, mod)
	}
	fmt.Fprintf(&b, "transport: %s\n", strings.Join(v.Transport, " "))
	for _, net := range []string{p2p.DefaultNetwork, "ipfs"} {
		fmt.Fprintf(&b, "network %s: %s\n", net, strings.Join(v.Protocols[net], " "))
	}
	return b.String()
}

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the Go version, the commit and the network protocols",
		Long: `Version prints share's version, the Go release it was built with, the
commit it was built from (when the build recorded it), and the protocols
it speaks on network share (the default) and network ipfs (kubo's).
'share --version' prints the same.`,
		Example: "  share version\n  share version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := buildVersion()
			if g.json {
				return printJSON(g.stdout, v)
			}
			_, err := fmt.Fprint(g.stdout, v)
			return err
		},
	}
}
