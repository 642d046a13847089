package pubsub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/internal/kubotest"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// recordingHost records the bytes of every inbound stream, to capture
// what kubo sends.
type recordingHost struct {
	Host
	mu      sync.Mutex
	streams []*bytes.Buffer
}

type recordingStream struct {
	share.Stream
	h   *recordingHost
	buf *bytes.Buffer
}

func (s recordingStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	s.h.mu.Lock()
	s.buf.Write(p[:n])
	s.h.mu.Unlock()
	return n, err
}

func (h *recordingHost) SetHandler(proto string, f func(share.Stream)) {
	h.Host.SetHandler(proto, func(s share.Stream) {
		h.mu.Lock()
		buf := &bytes.Buffer{}
		h.streams = append(h.streams, buf)
		h.mu.Unlock()
		f(recordingStream{s, h, buf})
	})
}

// frames returns the RPC bodies recorded so far.
func (h *recordingHost) frames() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out [][]byte
	for _, buf := range h.streams {
		b := buf.Bytes()
		for len(b) > 0 {
			n, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < n {
				break
			}
			out = append(out, append([]byte(nil), b[k:k+int(n)]...))
			b = b[k+int(n):]
		}
	}
	return out
}

// TestKuboInterop runs gossipsub between this package on a real host on
// network ipfs and kubo 0.43.1: kubo and share graft each other into
// their meshes, and messages flow both ways with valid signatures. With
// SHARE_PUBSUB_CAPTURE=1 it saves the RPCs kubo sent to testdata/kubo
// (the fuzz seeds and TestKuboRPCs' inputs).
func TestKuboInterop(t *testing.T) {
	k := kubotest.StartWith(t, map[string]string{"Pubsub.Enabled": "true"})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	h, err := p2p.NewHost(context.Background(), p2p.Config{Key: key, Network: "ipfs",
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rh := &recordingHost{Host: h.Streams()}
	ps, err := New(rh, Config{Key: key, Protocols: Protocols("ipfs")})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	topic, _ := ps.Join("capture")
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	kuboSub := k.Command(ctx, "pubsub", "sub", "capture")
	var kuboOut syncBuf
	kuboSub.Stdout = &kuboOut
	if err := kuboSub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); kuboSub.Wait() }()
	ai, err := peer.AddrInfoFromString(k.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(context.Background(), ai); err != nil {
		t.Fatal(err)
	}
	realWait(t, 30*time.Second, "kubo in share's mesh and share among kubo's topic peers", func() bool {
		kp, _ := k.Try(nil, "pubsub", "peers", "capture")
		return inMeshID(topic, ai.ID) && strings.Contains(string(kp), h.ID().String())
	})

	if err := topic.Publish(context.Background(), []byte("from share\n")); err != nil {
		t.Fatal(err)
	}
	realWait(t, 10*time.Second, "kubo's subscriber to print share's message", func() bool {
		return strings.Contains(kuboOut.String(), "from share")
	})
	if m, _ := sub.Next(context.Background()); string(m.Data) != "from share\n" {
		t.Fatalf("own message: %q", m.Data)
	}
	for i := range 3 {
		if _, err := k.Try([]byte(fmt.Sprintf("from kubo %d", i)), "pubsub", "pub", "capture"); err != nil {
			t.Fatal(err)
		}
		nctx, ncancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := sub.Next(nctx)
		ncancel()
		if err != nil || m.Author() != ai.ID || string(m.Data) != fmt.Sprintf("from kubo %d", i) {
			t.Fatalf("message %d from kubo: %v %v", i, m, err)
		}
	}
	if s := ps.Score(ai.ID); s < 0 {
		t.Errorf("kubo's score %v: an honest peer scored negative", s)
	}
	if os.Getenv("SHARE_PUBSUB_CAPTURE") == "1" {
		saveFrames(t, rh.frames())
	}
}

func saveFrames(t *testing.T, frames [][]byte) {
	dir := filepath.Join("testdata", "kubo")
	os.MkdirAll(dir, 0o755)
	for i, f := range frames {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("rpc-%02d.bin", i)), f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("saved %d RPCs kubo sent", len(frames))
}

func inMeshID(t *Topic, p peer.ID) bool {
	for _, q := range t.MeshPeers() {
		if q == p {
			return true
		}
	}
	return false
}

// realWait polls cond on the real clock until it holds or d passes.
func realWait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
