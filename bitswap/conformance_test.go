package bitswap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/p2p/mocknet"
)

// recordings loads testdata/kubo: the manifest and each phase's messages,
// as kubo's bytes.
func recordings(t *testing.T) (manifest, map[string][][]byte) {
	t.Helper()
	var man manifest
	b, err := os.ReadFile(filepath.Join(recordDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	msgs := map[string][][]byte{}
	for phase, files := range man.Messages {
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(recordDir, f))
			if err != nil {
				t.Fatal(err)
			}
			msgs[phase] = append(msgs[phase], b)
		}
	}
	return man, msgs
}

// summary lists what a message says, one line per item, sorted (kubo
// orders blocks and presences as its maps iterate), CIDs by name.
func summary(t *testing.T, m *Message, names map[cid.Cid]string) []string {
	t.Helper()
	name := func(c cid.Cid) string {
		if n, ok := names[c]; ok {
			return n
		}
		return c.String()
	}
	var out []string
	if m.Full {
		out = append(out, "full")
	}
	for _, e := range m.Wants {
		out = append(out, fmt.Sprintf("want %s type=%d cancel=%v dont-have=%v priority=%d", name(e.Cid), e.Type, e.Cancel, e.SendDontHave, e.Priority))
	}
	for _, b := range m.Blocks {
		c, err := b.CID()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, "block "+name(c))
	}
	for _, p := range m.Presences {
		out = append(out, fmt.Sprintf("presence %s dont-have=%v", name(p.Cid), p.DontHave))
	}
	slices.Sort(out)
	return out
}

// kubo's recorded messages decode to what was asked of it, and what it
// asked; our encoding of the same message carries the same fields, byte
// for byte, and decodes the same.
func TestKuboConformance(t *testing.T) {
	man, msgs := recordings(t)
	names := map[cid.Cid]string{}
	for n, s := range man.CIDs {
		names[cid.MustParse(s)] = n
	}
	want := map[string][][]string{
		// boxo answers a want-have of a block under 1 KiB with the block.
		"want-have":        {{"block small", "presence big dont-have=false", "presence missing dont-have=true"}},
		"want-block":       {{"block small", "presence missing2 dont-have=true"}},
		"want-block-1.0.0": {{"block small"}},
		// kubo's client: a broadcast want-have, a want-block asking for
		// DONT_HAVE, a cancel once the block came.
		"kubo-wantlist": {
			{"want served type=1 cancel=false dont-have=false priority=2147483647"},
			{"want served type=0 cancel=false dont-have=true priority=2147483646"},
			{"want served type=0 cancel=true dont-have=false priority=0"},
		},
	}
	for phase, wantSums := range want {
		if len(msgs[phase]) != len(wantSums) {
			t.Fatalf("%s: %d messages recorded, want %d", phase, len(msgs[phase]), len(wantSums))
		}
		proto := Protocol120
		if phase == "want-block-1.0.0" {
			proto = Protocol100
		}
		for i, b := range msgs[phase] {
			m, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("%s %d: %v", phase, i, err)
			}
			if got := summary(t, m, names); !slices.Equal(got, wantSums[i]) {
				t.Errorf("%s %d: kubo's message says\n%q\nwant\n%q", phase, i, got, wantSums[i])
			}
			ours := body(t, AppendMessage(nil, m, proto))
			if got, want := fields(t, ours), fields(t, b); !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("%s %d: our encoding's fields\n%x\nkubo's\n%x", phase, i, got, want)
			}
			again, err := Unmarshal(ours)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(t, again, names); !slices.Equal(got, wantSums[i]) {
				t.Errorf("%s %d: our encoding decodes to %q", phase, i, got)
			}
		}
	}
	if v0 := msgs["want-block-1.0.0"][0]; !bytes.Contains(v0, []byte{fBlocksV0<<3 | 2}) {
		t.Error("kubo's 1.0.0 answer has no field 2")
	}
}

// fields lists the top-level fields of a message as their bytes, sorted,
// without an empty wantlist (boxo always writes one; we leave it out).
func fields(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		_, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(0, typ, b[n:])
		if n < 0 || m < 0 {
			t.Fatalf("bad field at %x", b)
		}
		if !bytes.Equal(b[:n+m], []byte{0x0a, 0}) {
			out = append(out, b[:n+m])
		}
		b = b[n+m:]
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

// Our server answers kubo's recorded wantlist as boxo's would: HAVE to
// the want-have (kubo did not ask for DONT_HAVE), the block to the
// want-block, and forgets the want on the cancel.
func TestServerAnswersKuboWantlist(t *testing.T) {
	man, msgs := recordings(t)
	served := cid.MustParse(man.CIDs["served"])
	mem := mocknet.New()
	s := newServer(t, mem, Config{}, nil)
	s.store.Set(served, bytes.Repeat([]byte("served by share\n"), 200))
	c := newClient(t, mem, s.h)
	st := rawStream(t, c.h, s.h.ID(), Protocol120)
	defer st.Close()
	frame := func(b []byte) []byte { return protowire.AppendBytes(nil, b) }
	wl := msgs["kubo-wantlist"]
	st.Write(frame(wl[0]))
	if got := c.waitAnswers(1)[served]; !slices.Equal(got, []string{"have"}) {
		t.Fatalf("answer to kubo's want-have: %v", got)
	}
	st.Write(frame(wl[1]))
	waitFor(t, func() bool { return len(c.answers()[served]) == 2 }, "no answer to kubo's want-block")
	if got := c.answers()[served]; !slices.Equal(got, []string{"have", "block"}) {
		t.Fatalf("answers %v", got)
	}
	st.Write(frame(wl[2]))
	ps := s.peerState(t, c.h.ID())
	waitFor(t, func() bool { return len(wantsOf(ps)) == 0 }, "the cancelled want is kept")
}
