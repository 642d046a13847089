package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/traffic"
)

// fetchReport shows a fetch as it goes (the progress bar) and says at the
// end where the bytes came from.
type fetchReport struct {
	g    *globals
	bar  *progressbar.ProgressBar
	last node.Progress
}

// newFetchReport starts the bar, if the terminal shows one; end stops it.
func newFetchReport(g *globals) *fetchReport {
	r := &fetchReport{g: g}
	if g.showProgress() {
		r.bar = newBar(g.stderr, -1, "checking")
	}
	return r
}

// progress is the fetch's Progress option.
func (r *fetchReport) progress(p node.Progress) {
	r.last = p
	if r.bar == nil {
		return
	}
	desc := p.Phase
	if p.Phase == "fetching" {
		desc = fmt.Sprintf("fetching from %d peer(s)", p.Peers)
	}
	r.bar.Describe(desc)
	if p.Total > 0 && p.Phase == "fetching" && r.bar.GetMax64() != p.Total {
		r.bar.ChangeMax64(p.Total) // now the bar has an ETA
	}
	r.bar.Set64(p.Bytes)
}

// end stops the bar.
func (r *fetchReport) end() {
	if r.bar != nil {
		endBar(r.bar)
		r.bar = nil
	}
}

// peerJSON is one peer's part of a fetch in --json output.
type peerJSON struct {
	Peer     string
	Protocol string
	Blocks   int
	Bytes    int64
}

// saved reports that c, which name names (a CID or a path), was written
// to out, with the bytes that came from each peer.
func (r *fetchReport) saved(c, name, out string) error {
	g := r.g
	if g.json {
		from := make([]peerJSON, 0, len(r.last.From))
		for _, f := range r.last.From {
			from = append(from, peerJSON{f.Peer.String(), f.Protocol, f.Blocks, f.Bytes})
		}
		return printJSON(g.stdout, struct {
			Cid, Path string
			Fetched   int64
			From      []peerJSON
		}{c, out, r.last.Bytes, from})
	}
	if !g.quiet {
		abs, _ := filepath.Abs(out)
		fmt.Fprintf(g.stderr, "saved %s to %s%s\n", displayName(name), displayName(abs), fromLine(r.last.From))
	}
	return nil
}

// fromLine says where fetched bytes came from: "" when nothing was
// fetched, else " (1.0 GiB from 2 peers: 600.0 MiB from 12D3...abc over
// share, ...)".
func fromLine(from []exchange.PeerStat) string {
	if len(from) == 0 {
		return ""
	}
	var total int64
	parts := make([]string, 0, len(from))
	for _, f := range from {
		total += f.Bytes
		parts = append(parts, fmt.Sprintf("%s from %s over %s", humanBytes(f.Bytes), shortPeer(f.Peer.String()), protoName(f.Protocol)))
	}
	peers := "1 peer"
	if len(from) > 1 {
		peers = fmt.Sprintf("%d peers", len(from))
	}
	return fmt.Sprintf(" (%s from %s: %s)", humanBytes(total), peers, strings.Join(parts, ", "))
}

// protoName is a block protocol's short name: "bitswap" for
// /ipfs/bitswap/1.2.0, "share" for share's /NET/blocks/1.0.0 on any
// network.
func protoName(proto string) string {
	if p := traffic.ProtoOf(proto); p != 0 {
		return p.String()
	}
	return proto
}

// shortPeer abbreviates a PeerID for human output: its first and last six
// characters, which tell peers apart (share peers lists them in full).
func shortPeer(id string) string {
	if len(id) <= 14 {
		return id
	}
	return id[:6] + "…" + id[len(id)-6:]
}
