package send

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/p2p/peer"
)

// pipeStream is one end of an in-memory stream between two peers.
type pipeStream struct {
	net.Conn
	remote peer.ID
}

func (s pipeStream) CloseWrite() error             { return s.Conn.Close() }
func (s pipeStream) Reset() error                  { return s.Conn.Close() }
func (s pipeStream) RemotePeer() peer.ID           { return s.remote }
func (s pipeStream) SetDeadline(t time.Time) error { return s.Conn.SetDeadline(t) }

const (
	receiverID = peer.ID("receiver")
	senderID   = peer.ID("sender")
)

func testOffer(t *testing.T) Offer {
	mh, err := multihash.Sum([]byte("hello"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return Offer{Root: cid.NewCidV1(cid.Raw, mh), Name: "hello.txt", Size: 5}
}

// dial opens a stream from the receiver to s and serves its end.
func dial(s *Sender) pipeStream {
	a, b := net.Pipe()
	go s.Handle(pipeStream{b, receiverID})
	return pipeStream{a, senderID}
}

func newTestSender(t *testing.T, code Code) (*Sender, chan Event) {
	t.Helper()
	events := make(chan Event, 16)
	s := NewSender(SenderConfig{Code: code, Network: "share", Self: senderID, Offer: testOffer(t),
		OnEvent: func(e Event) { events <- e }})
	return s, events
}

func mustCode(t *testing.T, s string) Code {
	t.Helper()
	c, err := ParseCode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func nextEvent(t *testing.T, events chan Event) Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

func TestRightCode(t *testing.T) {
	code := mustCode(t, "7-crystal-tunnel")
	s, events := newTestSender(t, code)
	tr, err := Receive(dial(s), receiverID, code, "share")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Offer != testOffer(t) {
		t.Fatalf("offer %+v", tr.Offer)
	}
	if e := nextEvent(t, events); e.Kind != Accepted || !s.Allowed(receiverID) {
		t.Fatalf("event %+v, allowed %v", e, s.Allowed(receiverID))
	}
	if err := tr.Progress(3); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, events); e.Kind != Progress || e.Bytes != 3 {
		t.Fatalf("event %+v", e)
	}
	if err := tr.Done(5); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	if res, err := s.Result(); err != nil || res.Peer != receiverID || res.Bytes != 5 {
		t.Fatalf("result %+v %v", res, err)
	}
}

// TestWrongCode: a wrong code fails at once, the sender is told and
// keeps waiting; the right code still works after it; MaxFailures wrong
// codes end the send.
func TestWrongCode(t *testing.T) {
	code := mustCode(t, "7-crystal-tunnel")
	s, events := newTestSender(t, code)
	wrong := mustCode(t, "7-crystal-tuna")
	if _, err := Receive(dial(s), receiverID, wrong, "share"); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("wrong code: %v", err)
	}
	if e := nextEvent(t, events); e.Kind != WrongCode || e.Failures != 1 || s.Allowed(receiverID) {
		t.Fatalf("event %+v", e)
	}
	if _, err := Receive(dial(s), receiverID, code, "share"); err != nil {
		t.Fatalf("right code after a wrong one: %v", err)
	}
	s2, events2 := newTestSender(t, code)
	for i := 1; i <= MaxFailures; i++ {
		Receive(dial(s2), receiverID, wrong, "share")
		nextEvent(t, events2)
	}
	<-s2.Done()
	if _, err := s2.Result(); !errors.Is(err, ErrTooManyTries) {
		t.Fatalf("after %d wrong codes: %v", MaxFailures, err)
	}
}

// TestElsewhere: a code of another number is not this sender's, and
// costs it no try; nothing is allowed.
func TestElsewhere(t *testing.T) {
	s, _ := newTestSender(t, mustCode(t, "7-crystal-tunnel"))
	_, err := Receive(dial(s), receiverID, mustCode(t, "8-crystal-tunnel"), "share")
	if !IsElsewhere(err) {
		t.Fatalf("other number: %v", err)
	}
	_, err = Receive(dial(s), receiverID, mustCode(t, "7-crystal-tunnel"), "other")
	if !IsElsewhere(err) {
		t.Fatalf("other network: %v", err)
	}
	if s.failures != 0 || s.Allowed(receiverID) {
		t.Fatal("a refused receiver counted or was allowed")
	}
}

// TestBusy: while one receiver is served, a second is refused.
func TestBusy(t *testing.T) {
	code := mustCode(t, "7-crystal-tunnel")
	s, _ := newTestSender(t, code)
	if _, err := Receive(dial(s), receiverID, code, "share"); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	go s.Handle(pipeStream{b, "third"})
	if _, err := Receive(pipeStream{a, senderID}, "third", code, "share"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second receiver: %v", err)
	}
	if s.Allowed("third") {
		t.Fatal("third peer allowed")
	}
}

// TestChannelBinding: a receiver that runs the exchange under another
// PeerID (a relay replaying it) fails the confirmation.
func TestChannelBinding(t *testing.T) {
	code := mustCode(t, "7-crystal-tunnel")
	s, _ := newTestSender(t, code)
	a, b := net.Pipe()
	go s.Handle(pipeStream{b, receiverID})
	if _, err := Receive(pipeStream{a, senderID}, "mallory", code, "share"); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("exchange under another PeerID: %v", err)
	}
}

func TestParseCode(t *testing.T) {
	for _, bad := range []string{"", "7", "7-crystal", "0-crystal-tunnel", "1000-crystal-tunnel", "x-crystal-tunnel", "7-crystal-zzzz", "7-a-b-c"} {
		if _, err := ParseCode(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	c := mustCode(t, " 7-Crystal-TUNNEL\n")
	if c.String() != "7-crystal-tunnel" {
		t.Fatalf("normalised %q", c)
	}
	for range 100 {
		c, err := NewCode()
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseCode(c.String()); err != nil || back != c {
			t.Fatalf("%v: %v %v", c, back, err)
		}
	}
	words, _ := wordList()
	if len(words) != 2048 {
		t.Fatalf("%d words", len(words))
	}
	if a, b := mustCode(t, "7-crystal-tunnel").Rendezvous("share"), mustCode(t, "7-able-tuna").Rendezvous("share"); a != b {
		t.Fatal("the rendezvous depends on the words")
	}
}

// FuzzMessages feeds the decoders of the send protocol arbitrary bytes.
func FuzzMessages(f *testing.F) {
	o := Offer{Root: cid.NewCidV1(cid.Raw, []byte{0x12, 0x01, 0x00}), Name: "n", Size: 3}
	f.Add(appendMessage(nil, msgOffer, sealOffer(make([]byte, 64), o)))
	f.Add(appendMessage(nil, msgHello, make([]byte, 60)))
	f.Add(appendMessage(nil, msgRefuse, []byte{refuseBusy}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readMessage(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		expect(m, msgReply)
		decodeHello(m.body)
		decodeCount(m.body)
		decodeOffer(m.body)
		if o, err := openOffer(make([]byte, 64), m.body); err == nil {
			if back, err := decodeOffer(appendOffer(nil, o)); err != nil || back != o {
				t.Fatalf("offer %+v does not round-trip: %+v %v", o, back, err)
			}
		}
	})
}
