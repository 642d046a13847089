package bitswap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/internal/kubotest"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// manifest says what the recordings in testdata/kubo are: the CIDs they
// are about and, per phase, the files of the messages recorded.
type manifest struct {
	Kubo     string              // kubo's version
	CIDs     map[string]string   // name -> CID
	Messages map[string][]string // phase -> files
}

const recordDir = "testdata/kubo"

// Recording kubo's messages: run with SHARE_KUBO=/path/to/ipfs and
// SHARE_BITSWAP_RECORD=1 to rewrite testdata/kubo (see its README).
func TestRecordKubo(t *testing.T) {
	if os.Getenv("SHARE_BITSWAP_RECORD") != "1" {
		t.Skip("SHARE_BITSWAP_RECORD=1 rewrites the kubo recordings")
	}
	k := kubotest.Start(t)
	man := manifest{Kubo: strings.TrimSpace(string(k.Run("version", "--number"))), CIDs: map[string]string{}, Messages: map[string][]string{}}
	small := []byte("bitswap conformance: a kubo CIDv0 file\n")
	big := bytes.Repeat([]byte("bitswap conformance: a raw CIDv1 block of 2 KiB\n"), 43)
	man.CIDs["small"] = strings.TrimSpace(string(must(k.Try(small, "add", "-Q"))))
	man.CIDs["big"] = strings.TrimSpace(string(must(k.Try(big, "block", "put", "--cid-codec", "raw"))))
	for _, name := range []string{"missing", "missing2"} {
		man.CIDs[name] = dag.Sum(dag.Raw, []byte(name)).String()
	}
	os.RemoveAll(recordDir)
	if err := os.MkdirAll(recordDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := func(name string) cid.Cid { return cid.MustParse(man.CIDs[name]) }

	// kubo's answers, in 1.2.0: want-have of a block above boxo's 1 KiB
	// replace size (HAVE), of a small one (the block instead), of a
	// missing one (DONT_HAVE); want-block of one it has and one it lacks.
	rec := newRecorder(t, Protocols...)
	rec.ask(k, Protocol120, &Message{Wants: []Entry{
		{Cid: c("big"), Type: WantHave, SendDontHave: true, Priority: 3},
		{Cid: c("small"), Type: WantHave, SendDontHave: true, Priority: 2},
		{Cid: c("missing"), Type: WantHave, SendDontHave: true, Priority: 1},
	}}, 3)
	man.Messages["want-have"] = rec.save(t, "want-have")
	rec.ask(k, Protocol120, &Message{Wants: []Entry{
		{Cid: c("small"), Type: WantBlock, SendDontHave: true, Priority: 2},
		{Cid: c("missing2"), Type: WantBlock, SendDontHave: true, Priority: 1},
	}}, 2)
	man.Messages["want-block"] = rec.save(t, "want-block")

	// A peer of 1.0.0 only gets the block as data (field 2).
	old := newRecorder(t, Protocol100)
	old.ask(k, Protocol100, &Message{Wants: []Entry{{Cid: c("small"), Priority: 1}}}, 1)
	man.Messages["want-block-1.0.0"] = old.save(t, "want-block-1.0.0")

	// kubo's own wantlist when `ipfs block get` asks our server for a
	// block it lacks, up to its cancel once the block arrived.
	served := bytes.Repeat([]byte("served by share\n"), 200)
	sc, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: 32}.Sum(served)
	man.CIDs["served"] = sc.String()
	man.Messages["kubo-wantlist"] = recordWantlist(t, k, sc, served)

	b, _ := json.MarshalIndent(man, "", "  ")
	if err := os.WriteFile(filepath.Join(recordDir, "manifest.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// recorder is a host on TCP serving protos with handlers that record the
// message bodies arriving.
type recorder struct {
	t    testing.TB
	h    *p2p.Host
	got  chan []byte
	msgs [][]byte
}

func newRecorder(t testing.TB, protos ...string) *recorder {
	r := &recorder{t: t, h: newTCPHost(t), got: make(chan []byte, 64)}
	for _, proto := range protos {
		r.h.SetHandler(proto, func(s *p2p.Stream) {
			defer s.Close()
			br := bufioReader(s)
			for {
				s.SetReadDeadline(time.Now().Add(30 * time.Second))
				b, err := readMessage(br, nil)
				if err != nil {
					return
				}
				r.got <- b
			}
		})
	}
	return r
}

func newTCPHost(t testing.TB) *p2p.Host { t.Helper(); return newHost(t, nil) }

// ask connects to k, sends m on a stream of proto and records answers
// until n CIDs are answered.
func (r *recorder) ask(k *kubotest.Kubo, proto string, m *Message, n int) {
	t := r.t
	ai, err := peer.AddrInfoFromString(k.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.h.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	s, err := r.h.NewStream(ctx, ai.ID, proto)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(AppendMessage(nil, m, proto)); err != nil {
		t.Fatal(err)
	}
	answered := map[cid.Cid]bool{}
	for len(answered) < n {
		select {
		case b := <-r.got:
			r.msgs = append(r.msgs, b)
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("kubo's answer %x: %v", b, err)
			}
			for _, p := range got.Presences {
				answered[p.Cid] = true
			}
			for _, blk := range got.Blocks {
				c, _ := blk.CID()
				answered[c] = true
			}
		case <-ctx.Done():
			t.Fatalf("kubo answered %d of %d CIDs", len(answered), n)
		}
	}
}

// save writes the messages recorded since the last save as phase-N.bin.
func (r *recorder) save(t testing.TB, phase string) []string {
	var names []string
	for i, b := range r.msgs {
		name := fmt.Sprintf("%s-%d.bin", phase, i)
		if err := os.WriteFile(filepath.Join(recordDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	r.msgs = nil
	return names
}

// teeHost records the messages arriving on the streams it hands to its
// handlers.
type teeHost struct {
	share.StreamHost
	got chan []byte
}

func (h teeHost) SetHandler(proto string, fn func(share.Stream)) {
	h.StreamHost.SetHandler(proto, func(s share.Stream) { fn(&teeStream{Stream: s, got: h.got}) })
}

type teeStream struct {
	share.Stream
	got chan []byte
	buf []byte
}

func (s *teeStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	s.buf = append(s.buf, p[:n]...)
	for {
		l, k := protowire.ConsumeVarint(s.buf)
		if k < 0 || len(s.buf)-k < int(l) {
			break
		}
		s.got <- bytes.Clone(s.buf[k : k+int(l)])
		s.buf = s.buf[k+int(l):]
	}
	return n, err
}

func recordWantlist(t *testing.T, k *kubotest.Kubo, c cid.Cid, data []byte) []string {
	h := newTCPHost(t)
	store := dag.NewMemStore()
	store.Set(c, data)
	got := make(chan []byte, 64)
	bs := New(teeHost{h.Streams(), got}, Config{Store: store})
	defer bs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ai, _ := peer.AddrInfoFromString(k.Addr)
	if err := h.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	if out := k.Run("block", "get", c.String()); !bytes.Equal(out, data) {
		t.Fatalf("kubo got %d bytes, want %d", len(out), len(data))
	}
	r := &recorder{t: t}
	for cancelled := false; !cancelled; {
		select {
		case b := <-got:
			r.msgs = append(r.msgs, b)
			m, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range m.Wants {
				cancelled = cancelled || (e.Cid == c && e.Cancel)
			}
		case <-ctx.Done():
			t.Fatal("kubo sent no cancel")
		}
	}
	return r.save(t, "kubo-wantlist")
}
