package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/send"
)

// sendNet is a DHT server on loopback TCP that every sender and receiver
// bootstraps from, with LAN discovery off: the rendezvous goes through
// the DHT (whose tables take no in-memory addresses).
type sendNet struct {
	boot string
}

func newSendNet(t *testing.T) *sendNet {
	boot := onlineNode(t)
	ai := peer.AddrInfo{ID: boot.net.Host.ID(), Addrs: boot.net.Host.Addrs()}
	return &sendNet{boot: fmt.Sprintf(`["%s/p2p/%s"]`, ai.Addrs[0], ai.ID)}
}

// open opens a node that has not joined the network, in a fresh
// repository whose config bootstraps from the DHT server.
func (sn *sendNet) open(t *testing.T) *Node {
	t.Helper()
	n, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	cfg := n.Repo.Config()
	// Provide.Strategy none, as the CLI sets it for a sender.
	for k, v := range map[string]string{"Discovery.MDNS": "false", "Bootstrap": sn.boot, "Provide.Strategy": `"none"`} {
		if cfg, err = cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Repo.SaveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return n
}

func (sn *sendNet) options() NetworkOptions {
	return NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}
}

// sending is a send running in the background.
type sending struct {
	n      *Node
	code   chan send.Code
	offer  send.Offer
	events chan send.Event
	done   chan error
	result send.Result
}

func (sn *sendNet) startSend(t *testing.T, path string, code send.Code) *sending {
	t.Helper()
	s := &sending{n: sn.open(t), code: make(chan send.Code, 1), events: make(chan send.Event, 16), done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	go func() {
		res, err := s.n.Send(ctx, path, SendOptions{Network: sn.options(), Code: code,
			OnCode:  func(c send.Code, o send.Offer) { s.offer = o; s.code <- c },
			OnEvent: func(e send.Event) { s.events <- e }})
		s.result = res
		s.done <- err
	}()
	select {
	case <-s.code:
	case err := <-s.done:
		t.Fatal(err)
	}
	return s
}

func (sn *sendNet) receive(t *testing.T, code send.Code, out string) (send.Offer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return sn.open(t).Receive(ctx, code, ReceiveOptions{Network: sn.options(), Out: out, Find: 20 * time.Second})
}

func writeSendFile(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i/4096)
	}
	path := filepath.Join(t.TempDir(), "payload.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func testCode(t *testing.T, s string) send.Code {
	t.Helper()
	c, err := send.ParseCode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitSent(t *testing.T, s *sending) error {
	t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the sender did not end")
	}
	return nil
}

// TestSendReceive: the receiver finds the sender through the DHT's
// rendezvous, gets identical bytes, and the sender ends once told.
func TestSendReceive(t *testing.T) {
	sn := newSendNet(t)
	path, data := writeSendFile(t, 3<<20+123)
	code := testCode(t, "42-crystal-tunnel")
	s := sn.startSend(t, path, code)
	out := filepath.Join(t.TempDir(), "got.bin")
	offer, err := sn.receive(t, code, out)
	if err != nil {
		t.Fatal(err)
	}
	if offer.Name != "payload.bin" || offer.Size != uint64(len(data)) || offer.Root != s.offer.Root {
		t.Fatalf("offer %+v, sent %+v", offer, s.offer)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes (%v), sent %d", len(got), err, len(data))
	}
	if err := waitSent(t, s); err != nil {
		t.Fatal(err)
	}
	if s.result.Bytes != uint64(len(data)) {
		t.Fatalf("sender's result %+v", s.result)
	}
}

// TestReceiveWrongCode: a wrong code fails after one try, the sender is
// told and keeps waiting, and the right code then works.
func TestReceiveWrongCode(t *testing.T) {
	sn := newSendNet(t)
	path, data := writeSendFile(t, 100<<10)
	s := sn.startSend(t, path, testCode(t, "42-crystal-tunnel"))
	start := time.Now()
	_, err := sn.receive(t, testCode(t, "42-crystal-tuna"), filepath.Join(t.TempDir(), "x"))
	if !errors.Is(err, send.ErrWrongCode) {
		t.Fatalf("wrong code: %v", err)
	}
	t.Logf("wrong code failed in %v", time.Since(start))
	select {
	case e := <-s.events:
		if e.Kind != send.WrongCode || e.Failures != 1 {
			t.Fatalf("sender's event %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sender was not told")
	}
	out := filepath.Join(t.TempDir(), "got.bin")
	if _, err := sn.receive(t, testCode(t, "42-crystal-tunnel"), out); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	if err := waitSent(t, s); err != nil {
		t.Fatal(err)
	}
}

// TestSendThirdPeer: a peer that knows the rendezvous (and, here, even the
// root CID) but not the code gets no block from the sender: it is told
// DONT_HAVE, and its fetch finds nobody.
func TestSendThirdPeer(t *testing.T) {
	sn := newSendNet(t)
	path, _ := writeSendFile(t, 100<<10)
	s := sn.startSend(t, path, testCode(t, "42-crystal-tunnel"))
	third := sn.open(t)
	nw, err := third.startNetworkOnce(context.Background(), sn.options())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var sender peer.ID
	for sender == "" && ctx.Err() == nil {
		// Until the tables are filled and the record is there.
		for ai := range nw.Provider.FindProviders(ctx, testCode(t, "42-crystal-tunnel").Rendezvous("share"), 0) {
			sender = ai.ID
			if err := nw.Host.Connect(ctx, ai); err != nil {
				t.Fatal(err)
			}
			break
		}
		wait(ctx, 50*time.Millisecond)
	}
	if sender != s.n.Repo.Identity.ID {
		t.Fatalf("rendezvous gave %s, sender is %s", sender, s.n.Repo.Identity.ID)
	}
	have, err := nw.Exchange.Has(ctx, sender, []cid.Cid{s.offer.Root})
	if err != nil || have[0] {
		t.Fatalf("the sender told a third peer Has = %v, %v", have, err)
	}
	err = third.Get(ctx, s.offer.Root, filepath.Join(t.TempDir(), "stolen"), GetOptions{FetchOptions: FetchOptions{Timeout: 5 * time.Second}})
	if err == nil || !errs.Is(errs.NotFound, err) && !errs.Is(errs.Timeout, err) {
		t.Fatalf("third peer's get: %v", err)
	}
	select {
	case e := <-s.events:
		t.Fatalf("the sender saw %+v", e)
	default:
	}
}

func TestLocalName(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "../x", "/etc/passwd", "a/b", `a\b`, "a\x00b"} {
		if _, err := localName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if n, err := localName("photos 2024"); err != nil || n != "photos 2024" {
		t.Fatalf("%q %v", n, err)
	}
}

// TestReceiverServesNobody: the receiver tells every other peer that it
// has nothing, even once it has it all (the fetch's asks reveal the root's CID
// to the peers it is connected to).
func TestReceiverServesNobody(t *testing.T) {
	sn := newSendNet(t)
	path, _ := writeSendFile(t, 100<<10)
	code := testCode(t, "42-crystal-tunnel")
	s := sn.startSend(t, path, code)
	r := sn.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	third := onlineNode(t)
	_, err := r.Receive(ctx, code, ReceiveOptions{Network: sn.options(), Out: filepath.Join(t.TempDir(), "got"),
		OnOffer: func(send.Offer, string) error {
			connect(t, third, r)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	// Everything is here now, and the receiver's network still runs.
	have, err := third.net.Exchange.Has(ctx, r.net.Host.ID(), []cid.Cid{s.offer.Root})
	if err != nil || have[0] {
		t.Fatalf("the receiver told a third peer Has = %v, %v", have, err)
	}
}
