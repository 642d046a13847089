// Package send is the protocol of share send and share receive: a short
// human code (a public number and two secret words), the rendezvous a
// receiver finds the sender by (derived from the number only), and the
// exchange on a stream of /<net>/send/1.0.0 in which both ends prove with
// CPace (package send/cpace) that they hold the same code, bound to both
// PeerIDs, before the sender tells the root CID of what it sends. The
// blocks then travel over the ordinary block exchange, which the sender
// opens only to peers that completed the exchange (Sender.Allowed).
package send

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/send/cpace"
)

// Errors a receiver sees.
var (
	// ErrWrongCode is a code that the sender did not confirm.
	ErrWrongCode = errs.Errorf(errs.Invalid, "wrong code: the sender did not confirm it (check it and try again; the sender was told)")
	// ErrBusy is a sender that already serves another receiver.
	ErrBusy = errs.Errorf(errs.InUse, "the sender is already sending to another receiver")
	// ErrTooManyTries ends a sender after MaxFailures wrong codes.
	ErrTooManyTries = errs.Errorf(errs.Invalid, "too many wrong codes: stopped sending (the code may have been guessed at; send again for a new code)")
	// errElsewhere is a peer that is not the sender of this code.
	errElsewhere = errors.New("send: not this code's sender")
)

// MaxFailures is how many wrong codes a sender accepts before it stops:
// an attacker who knows the rendezvous has that many online guesses of
// the 2^22 codes behind it, and a receiver who mistyped can try again.
const MaxFailures = 3

// Timeouts: a handshake step, and the receiver's silence while it
// fetches (it sends progress every ProgressInterval).
const (
	stepTimeout      = 20 * time.Second
	idleTimeout      = time.Minute
	ProgressInterval = 5 * time.Second
)

// EventKind says what an Event reports.
type EventKind int

// The events of a sender.
const (
	WrongCode EventKind = iota + 1 // a receiver failed the key confirmation
	Accepted                       // a receiver proved the code and got the offer
	Progress                       // the receiver says how much it has
	Received                       // the receiver has everything
	Lost                           // the receiver went away before it had everything
)

// Event is something a sender reports while it waits.
type Event struct {
	Kind     EventKind
	Peer     peer.ID
	Bytes    uint64 // Progress and Received: what the receiver has
	Failures int    // WrongCode: wrong codes so far
}

// Result is how a send ended.
type Result struct {
	Peer  peer.ID // the receiver that has everything
	Bytes uint64
}

// SenderConfig builds a Sender.
type SenderConfig struct {
	Code    Code
	Network string
	Self    peer.ID
	Offer   Offer
	// OnEvent, if not nil, is called for each event, one at a time.
	OnEvent func(Event)
}

// Sender serves one offer on the send protocol until one receiver has
// it all or MaxFailures receivers gave a wrong code.
type Sender struct {
	cfg        SenderConfig
	rendezvous []byte

	mu       sync.Mutex
	failures int
	allowed  map[peer.ID]bool
	active   peer.ID // the receiver being served, if any
	ended    bool
	result   Result
	err      error
	done     chan struct{}
	eventMu  sync.Mutex
}

// NewSender returns a sender of cfg.Offer under cfg.Code.
func NewSender(cfg SenderConfig) *Sender {
	return &Sender{
		cfg:        cfg,
		rendezvous: cfg.Code.Rendezvous(cfg.Network).Bytes(),
		allowed:    make(map[peer.ID]bool),
		done:       make(chan struct{}),
	}
}

// Allowed reports whether p completed the exchange with the right code:
// the block server serves only those.
func (s *Sender) Allowed(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allowed[p]
}

// Done is closed when the send has ended; Result then says how.
func (s *Sender) Done() <-chan struct{} { return s.done }

// Result is the outcome once Done is closed.
func (s *Sender) Result() (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.result, s.err
}

func (s *Sender) emit(e Event) {
	if s.cfg.OnEvent == nil {
		return
	}
	s.eventMu.Lock()
	defer s.eventMu.Unlock()
	s.cfg.OnEvent(e)
}

// end ends the send with res or err, once.
func (s *Sender) end(res Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended, s.result, s.err = true, res, err
	close(s.done)
}

// Handle serves one inbound stream of the send protocol.
func (s *Sender) Handle(st share.Stream) {
	defer st.Close()
	c := newConn(st)
	if err := s.serve(c); err != nil {
		st.Reset()
	}
}

// serve runs the sender's side of one exchange.
func (s *Sender) serve(c *conn) error {
	p := c.s.RemotePeer()
	h, err := c.readHello()
	if err != nil {
		return err
	}
	if ad, err := cpace.ParseAD(h.msgA); err != nil || !bytes.Equal(ad, s.rendezvous) {
		return c.refuse(refuseElsewhere)
	}
	if !s.claim(p) {
		return c.refuse(refuseBusy)
	}
	keys, err := s.handshake(c, h)
	if err != nil {
		s.release(p, false)
		return err
	}
	s.mu.Lock()
	s.allowed[p] = true
	s.mu.Unlock()
	if err := c.write(msgOffer, sealOffer(keys.ISK, s.cfg.Offer)); err != nil {
		s.release(p, true)
		return err
	}
	s.emit(Event{Kind: Accepted, Peer: p})
	return s.follow(c, p)
}

// claim makes p the receiver being served, unless another one is or the
// send has ended.
func (s *Sender) claim(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || (s.active != "" && s.active != p) {
		return false
	}
	s.active = p
	return true
}

// release lets another receiver try after p's exchange ended without
// success; a wrong code counts, and the MaxFailures-th ends the send.
func (s *Sender) release(p peer.ID, authenticated bool) {
	s.mu.Lock()
	if s.active == p {
		s.active = ""
	}
	delete(s.allowed, p)
	failures := s.failures
	if !authenticated {
		s.failures++
		failures = s.failures
	}
	s.mu.Unlock()
	if authenticated {
		s.emit(Event{Kind: Lost, Peer: p})
		return
	}
	s.emit(Event{Kind: WrongCode, Peer: p, Failures: failures})
	if failures >= MaxFailures {
		s.end(Result{}, ErrTooManyTries)
	}
}

// handshake answers the hello and checks the receiver's confirmation; an
// error means the code was not proven (a wrong code, or a receiver that
// went away before it proved it).
func (s *Sender) handshake(c *conn, h hello) (cpace.Keys, error) {
	p := c.s.RemotePeer()
	params := cpace.Params{PRS: s.cfg.Code.password(), CI: channel(p, s.cfg.Self), SID: h.sid}
	msgB, keys, err := cpace.Respond(params, h.msgA, nil, rand.Reader)
	if err != nil {
		return keys, err
	}
	if err := c.write(msgReply, append(keys.TagB[:len(keys.TagB):len(keys.TagB)], msgB...)); err != nil {
		return keys, err
	}
	m, err := c.read(stepTimeout)
	if err == nil {
		err = expect(m, msgConfirm)
	}
	if err == nil {
		err = cpace.CheckTag(m.body, keys.TagA)
	}
	if errors.Is(err, cpace.ErrMismatch) {
		c.refuse(refuseWrongCode)
	}
	return keys, err
}

// follow reads the receiver's progress until it says done (the send
// ends) or goes away (another may try).
func (s *Sender) follow(c *conn, p peer.ID) error {
	for {
		m, err := c.read(idleTimeout)
		if err != nil {
			s.release(p, true)
			return err
		}
		n, err := decodeCount(m.body)
		switch {
		case err != nil:
		case m.typ == msgProgress:
			s.emit(Event{Kind: Progress, Peer: p, Bytes: n})
			continue
		case m.typ == msgDone:
			c.write(msgBye, nil)
			// Until the receiver has read bye and closed: a sender that
			// exits at once may reset the stream before bye is out.
			c.s.CloseWrite()
			c.read(stepTimeout)
			s.emit(Event{Kind: Received, Peer: p, Bytes: n})
			s.end(Result{Peer: p, Bytes: n}, nil)
			return nil
		default:
			err = ErrBadMessage
		}
		s.release(p, true)
		return err
	}
}

// Transfer is a receiver's side once the code is confirmed: the offer,
// and the stream on which it reports its progress.
type Transfer struct {
	Offer Offer
	Peer  peer.ID
	c     *conn
}

// Receive runs the receiver's side of the exchange on st, opened to a
// peer that may be the sender of code: it proves the code and returns
// the sender's offer. A peer that is not this code's sender gives
// errElsewhere (see IsElsewhere); a wrong code ErrWrongCode.
func Receive(st share.Stream, self peer.ID, code Code, network string) (*Transfer, error) {
	c := newConn(st)
	sid := make([]byte, sidSize)
	rand.Read(sid)
	params := cpace.Params{PRS: code.password(), CI: channel(self, st.RemotePeer()), SID: sid}
	a, msgA, err := cpace.Start(params, code.Rendezvous(network).Bytes(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := c.write(msgHello, append(sid, msgA...)); err != nil {
		return nil, err
	}
	keys, err := confirm(c, a)
	if err != nil {
		return nil, err
	}
	m, err := c.read(stepTimeout)
	if err == nil {
		err = expect(m, msgOffer)
	}
	if err != nil {
		return nil, err
	}
	o, err := openOffer(keys.ISK, m.body)
	if err != nil {
		return nil, err
	}
	return &Transfer{Offer: o, Peer: st.RemotePeer(), c: c}, nil
}

// confirm reads the sender's reply, checks its tag and sends ours (also
// when its tag is wrong, so that the sender learns of the wrong code at
// once).
func confirm(c *conn, a *cpace.Initiator) (cpace.Keys, error) {
	m, err := c.read(stepTimeout)
	if err == nil {
		err = expect(m, msgReply)
	}
	if err != nil {
		return cpace.Keys{}, err
	}
	tag, msgB, err := decodeTagged(m.body)
	if err != nil {
		return cpace.Keys{}, err
	}
	keys, err := a.Finish(msgB)
	if err != nil {
		return keys, err
	}
	if err := c.write(msgConfirm, keys.TagA); err != nil {
		return keys, err
	}
	if cpace.CheckTag(tag, keys.TagB) != nil {
		// Wait for the sender's refusal: it then knows.
		c.read(stepTimeout)
		return keys, ErrWrongCode
	}
	return keys, nil
}

// IsElsewhere reports whether err says the peer was not this code's
// sender (the receiver tries the next one).
func IsElsewhere(err error) bool { return errors.Is(err, errElsewhere) }

// Progress tells the sender how many bytes are here.
func (t *Transfer) Progress(n uint64) error {
	return t.c.write(msgProgress, binary.AppendUvarint(nil, n))
}

// Done tells the sender that everything is here and waits for its
// acknowledgement, so that the sender has exited cleanly when it returns.
func (t *Transfer) Done(n uint64) error {
	if err := t.c.write(msgDone, binary.AppendUvarint(nil, n)); err != nil {
		return err
	}
	m, err := t.c.read(stepTimeout)
	if err == nil {
		err = expect(m, msgBye)
	}
	t.c.s.Close()
	return err
}

// Close ends the transfer's stream.
func (t *Transfer) Close() error { return t.c.s.Close() }

// channel is CPace's channel identifier: the initiator's (receiver's)
// PeerID, then the responder's, length-prefixed.
func channel(initiator, responder peer.ID) []byte {
	var b []byte
	for _, id := range []peer.ID{initiator, responder} {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
	}
	return b
}

// offerMAC authenticates an offer under the session key.
func offerMAC(isk, body []byte) []byte {
	m := hmac.New(sha512.New, isk)
	m.Write([]byte("share send offer"))
	m.Write(body)
	return m.Sum(nil)[:cpace.MACSize]
}

func sealOffer(isk []byte, o Offer) []byte {
	body := appendOffer(nil, o)
	return append(offerMAC(isk, body), body...)
}

func openOffer(isk, b []byte) (Offer, error) {
	tag, body, err := decodeTagged(b)
	if err != nil {
		return Offer{}, err
	}
	if !hmac.Equal(tag, offerMAC(isk, body)) {
		return Offer{}, ErrBadMessage
	}
	return decodeOffer(body)
}

// conn is a stream with the protocol's framing and deadlines.
type conn struct {
	s  share.Stream
	br *bufio.Reader
}

func newConn(s share.Stream) *conn { return &conn{s: s, br: bufio.NewReaderSize(s, 512)} }

func (c *conn) read(d time.Duration) (message, error) {
	c.s.SetReadDeadline(time.Now().Add(d))
	return readMessage(c.br)
}

func (c *conn) readHello() (hello, error) {
	m, err := c.read(stepTimeout)
	if err == nil {
		err = expect(m, msgHello)
	}
	if err != nil {
		return hello{}, err
	}
	return decodeHello(m.body)
}

func (c *conn) write(typ byte, body []byte) error {
	c.s.SetWriteDeadline(time.Now().Add(stepTimeout))
	_, err := c.s.Write(appendMessage(nil, typ, body))
	return err
}

// refuse tells the receiver why not; the exchange ends there.
func (c *conn) refuse(reason byte) error {
	return c.write(msgRefuse, []byte{reason})
}
