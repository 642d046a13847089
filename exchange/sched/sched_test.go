package sched

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/p2p/peer"
)

// TestDataDriven runs the scripts of testdata/*.txt: a session's events
// (peers join, answer, die, send bad blocks, say DONT_HAVE; a reader
// waits; time passes) and what the scheduler decides after each.
//
// Commands (sizes take KiB/MiB suffixes, durations Go's syntax):
//
//	new [min-window=N] [max-window=N] [lanes=N] [budget=SIZE] [progress-timeout=DUR]
//	root NAME [inner]                     the root is missing
//	join PEER...                          providers join
//	assign [PEER...]                      what each (default: every live one) is sent now
//	deliver PEER NAME... [retain]         blocks arrive from PEER, verify and are stored;
//	                                      input: the children of an inner node among them
//	                                      (added when it verifies, before it is stored),
//	                                      one a line, "NAME [inner] [SIZE]"
//	arrive PEER NAME...                   blocks arrive, not yet verified
//	verify PEER NAME... [retain]          blocks that arrived verify and are stored
//	corrupt PEER NAME                     a block arrives and fails verification
//	donthave PEER NAME...                 PEER says DONT_HAVE
//	die PEER                              PEER's streams end
//	want NAME                             a reader waits for NAME
//	took NAME                             the reader took the retained NAME
//	advance DUR                           time passes
//	tick                                  the shell's watchdog ticks
//	state                                 budget, counts and every peer's window
func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatal("no test files", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			h := &harness{}
			runDataDriven(t, f, h.run)
		})
	}
}

// harness drives a Sched with named blocks and peers.
type harness struct {
	s     *Sched
	now   time.Time
	peers map[string]*Peer
	order []string // peers in join order
	cids  map[string]cid.Cid
	names map[cid.Cid]string
	sizes map[string]int
	keys  map[string][]uint32
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (h *harness) run(t *testing.T, c *testCase) string {
	t.Helper()
	if h.s == nil && c.cmd != "new" {
		t.Fatalf("%s: %s before new", c.pos, c.cmd)
	}
	switch c.cmd {
	case "new":
		return h.init(t, c)
	case "root":
		h.block(t, c, c.args[0], slices.Contains(c.args, "inner"), -1, nil)
		h.s.Add(h.cids[c.args[0]], nil, -1)
		return "ok"
	case "join":
		return h.join(c.args)
	case "assign":
		return h.assign(c.args)
	case "deliver":
		return h.deliver(t, c)
	case "arrive":
		return h.arrive(t, c)
	case "verify":
		return h.verify(t, c)
	case "corrupt":
		return h.corrupt(t, c)
	case "donthave":
		return h.dontHave(t, c)
	case "die":
		h.s.DropPeer(h.peer(t, c, c.args[0]), false)
		return "ok"
	case "want":
		return fmt.Sprintf("wake %v", h.s.Want(h.cid(t, c, c.args[0])))
	case "took":
		h.s.Took(h.sizes[c.args[0]])
		return "ok"
	case "advance":
		d, err := time.ParseDuration(c.args[0])
		if err != nil {
			t.Fatalf("%s: %v", c.pos, err)
		}
		h.now = h.now.Add(d)
		return fmt.Sprintf("t=%v", h.now.Sub(epoch))
	case "tick":
		stalled, wake := h.s.Tick(h.now)
		return fmt.Sprintf("stalled %v wake %v", stalled, wake)
	case "state":
		return h.state()
	}
	t.Fatalf("%s: unknown command %s", c.pos, c.cmd)
	return ""
}

func (h *harness) init(t *testing.T, c *testCase) string {
	cfg := Config{MinWindow: 4, MaxWindow: 64, Lanes: 1, MaxInFlightBytes: 64 << 20,
		ProgressTimeout: 30 * time.Second, MaxBlockSize: 4 << 20}
	for _, a := range c.args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "min-window":
			cfg.MinWindow = h.atoi(t, c, v)
		case "max-window":
			cfg.MaxWindow = h.atoi(t, c, v)
		case "lanes":
			cfg.Lanes = h.atoi(t, c, v)
		case "budget":
			cfg.MaxInFlightBytes = int64(parseSize(t, c, v))
		case "progress-timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s: %v", c.pos, err)
			}
			cfg.ProgressTimeout = d
		default:
			t.Fatalf("%s: unknown argument %s", c.pos, a)
		}
	}
	*h = harness{s: New(cfg, epoch), now: epoch, peers: map[string]*Peer{},
		cids: map[string]cid.Cid{}, names: map[cid.Cid]string{}, sizes: map[string]int{}, keys: map[string][]uint32{}}
	return "ok"
}

func (h *harness) atoi(t *testing.T, c *testCase, v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", c.pos, err)
	}
	return n
}

// parseSize reads 100, 16KiB or 1MiB.
func parseSize(t *testing.T, c *testCase, v string) int {
	mult := 1
	switch {
	case strings.HasSuffix(v, "KiB"):
		v, mult = strings.TrimSuffix(v, "KiB"), 1<<10
	case strings.HasSuffix(v, "MiB"):
		v, mult = strings.TrimSuffix(v, "MiB"), 1<<20
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: size %q: %v", c.pos, v, err)
	}
	return n * mult
}

// block names a block: its CID (dag-pb if inner, raw otherwise), its size
// when it arrives (the declared size, 16 KiB for inner nodes and 256 KiB
// for leaves of unknown size) and its place in DAG order.
func (h *harness) block(t *testing.T, c *testCase, name string, inner bool, size int, key []uint32) cid.Cid {
	if _, ok := h.cids[name]; ok {
		t.Fatalf("%s: block %s named twice", c.pos, name)
	}
	codec := uint64(dag.Raw)
	if inner {
		codec = dag.DagPB
	}
	id := dag.Sum(codec, []byte(name))
	if size < 0 {
		size = 256 << 10
		if inner {
			size = 16 << 10
		}
	}
	h.cids[name], h.names[id], h.sizes[name], h.keys[name] = id, name, size, key
	return id
}

func (h *harness) cid(t *testing.T, c *testCase, name string) cid.Cid {
	id, ok := h.cids[name]
	if !ok {
		t.Fatalf("%s: unknown block %s", c.pos, name)
	}
	return id
}

func (h *harness) peer(t *testing.T, c *testCase, name string) *Peer {
	p := h.peers[name]
	if p == nil {
		t.Fatalf("%s: unknown peer %s", c.pos, name)
	}
	return p
}

// children adds the children of parent listed in the input, as the shell
// does when it has decoded an inner node, with their sizes as Tsize.
func (h *harness) children(t *testing.T, c *testCase, parent string) string {
	for i, line := range c.input {
		f := strings.Fields(line)
		inner := slices.Contains(f[1:], "inner")
		size := -1
		for _, a := range f[1:] {
			if a != "inner" {
				size = parseSize(t, c, a)
			}
		}
		key := append(slices.Clone(h.keys[parent]), uint32(i))
		id := h.block(t, c, f[0], inner, size, key)
		h.s.Add(id, key, int64(h.sizes[f[0]]))
	}
	return fmt.Sprintf("%d children", len(c.input))
}

func (h *harness) join(names []string) string {
	var out []string
	for _, name := range names {
		p := h.s.AddPeer(peer.ID(name))
		if p == nil {
			out = append(out, name+": excluded")
			continue
		}
		h.peers[name] = p
		if !slices.Contains(h.order, name) {
			h.order = append(h.order, name)
		}
		out = append(out, name+": joined")
	}
	return strings.Join(out, "\n")
}

// assign prints what Assign gives each peer named (every live one in join
// order by default): "want NAME" for a request, "cancel NAME" for a
// CANCEL, with "@lane" when the lane is not 0.
func (h *harness) assign(names []string) string {
	if len(names) == 0 {
		for _, n := range h.order {
			if !h.peers[n].dead {
				names = append(names, n)
			}
		}
	}
	var out []string
	for _, n := range names {
		var words []string
		for _, x := range h.s.Assign(h.peers[n], h.now, nil) {
			w := "want " + h.names[x.C]
			if x.Cancel {
				w = "cancel " + h.names[x.C]
			}
			if x.Lane != 0 {
				w += fmt.Sprintf("@%d", x.Lane)
			}
			words = append(words, w)
		}
		if len(words) == 0 {
			words = []string{"nothing"}
		}
		out = append(out, n+": "+strings.Join(words, ", "))
	}
	return strings.Join(out, "\n")
}

// deliver has blocks arrive from a peer, verify and be stored, as the
// shell does with a good block; retain keeps them for a reader.
func (h *harness) deliver(t *testing.T, c *testCase) string {
	p := h.peer(t, c, c.args[0])
	retain := slices.Contains(c.args, "retain")
	var out []string
	for _, name := range c.args[1:] {
		if name == "retain" {
			continue
		}
		id, n := h.cid(t, c, name), h.sizes[name]
		if a := h.s.Received(p, id, n, h.now); a != Requested {
			out = append(out, name+": "+answerNames[a])
			continue
		}
		out = append(out, h.verified(t, c, p, name, retain))
	}
	return strings.Join(out, "\n")
}

var answerNames = map[Answer]string{Requested: "requested", Late: "late", Unrequested: "unrequested"}

func (h *harness) verified(t *testing.T, c *testCase, p *Peer, name string, retain bool) string {
	id, n := h.cids[name], h.sizes[name]
	v := h.s.Verified(p, id, n, h.now)
	if !v.Store {
		return name + ": duplicate"
	}
	words := []string{name + ": stored"}
	if v.Descend {
		words = append(words, h.children(t, c, name))
	}
	for _, l := range v.Losers {
		words = append(words, "cancel at "+string(l.ID))
	}
	if h.s.Stored(id, n, retain) {
		words = append(words, "complete")
	}
	return strings.Join(words, ", ")
}

// verify has blocks that arrived from a peer verify and be stored.
func (h *harness) verify(t *testing.T, c *testCase) string {
	p := h.peer(t, c, c.args[0])
	var out []string
	for _, name := range c.args[1:] {
		if name != "retain" {
			h.cid(t, c, name)
			out = append(out, h.verified(t, c, p, name, slices.Contains(c.args, "retain")))
		}
	}
	return strings.Join(out, "\n")
}

// arrive has blocks arrive from a peer, their verification pending.
func (h *harness) arrive(t *testing.T, c *testCase) string {
	p := h.peer(t, c, c.args[0])
	var out []string
	for _, name := range c.args[1:] {
		out = append(out, name+": "+answerNames[h.s.Received(p, h.cid(t, c, name), h.sizes[name], h.now)])
	}
	return strings.Join(out, "\n")
}

// corrupt has a block arrive that fails verification: the shell drops
// its sender as bad.
func (h *harness) corrupt(t *testing.T, c *testCase) string {
	p := h.peer(t, c, c.args[0])
	name := c.args[1]
	id, n := h.cid(t, c, name), h.sizes[name]
	if a := h.s.Received(p, id, n, h.now); a != Requested {
		return name + ": " + answerNames[a]
	}
	h.s.Failed(id, n)
	h.s.DropPeer(p, true)
	return fmt.Sprintf("%s: failed, %s dropped as bad", name, string(p.ID))
}

func (h *harness) dontHave(t *testing.T, c *testCase) string {
	p := h.peer(t, c, c.args[0])
	var out []string
	for _, name := range c.args[1:] {
		a, drop := h.s.DontHave(p, h.cid(t, c, name))
		w := name + ": " + answerNames[a]
		if drop {
			h.s.DropPeer(p, false)
			w += fmt.Sprintf(", %s dropped", string(p.ID))
		}
		out = append(out, w)
	}
	return strings.Join(out, "\n")
}

// state prints the budget, the counts and every peer.
func (h *harness) state() string {
	s := h.s
	n := s.Counts()
	out := []string{fmt.Sprintf("inflight %s verifying %s retained %s; blocks %d missing %d duplicates %d",
		size(s.inflight), size(s.verifying), size(s.retained), n.Blocks, n.Missing, n.Duplicates)}
	for _, name := range h.order {
		p := h.peers[name]
		var reqs []string
		for c := range p.reqs {
			reqs = append(reqs, h.names[c])
		}
		slices.Sort(reqs)
		st := ""
		if p.dead {
			st = " dead"
		}
		out = append(out, fmt.Sprintf("%s:%s window %d rate %.1fMB/s outstanding [%s]",
			name, st, p.window, p.rate/1e6, strings.Join(reqs, " ")))
	}
	return strings.Join(out, "\n")
}

func size(n int64) string {
	switch {
	case n != 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n != 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}
