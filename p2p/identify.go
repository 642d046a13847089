package p2p

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/observed"
	"github.com/share-p2p/share/p2p/peer"
)

// Identify message limits: a message over MaxIdentifySize ends the stream.
const (
	MaxIdentifySize      = 64 << 10
	maxIdentifyAddrs     = 128
	maxIdentifyProtocols = 512
	maxIdentifyString    = 1024
)

// IdentifyMsg is what identify exchanges, shaped like libp2p's Identify
// protobuf (field numbers and types match).
type IdentifyMsg struct {
	ProtocolVersion string         // 5
	AgentVersion    string         // 6
	PublicKey       []byte         // 1: libp2p protobuf-encoded
	ListenAddrs     []ma.Multiaddr // 2
	ObservedAddr    ma.Multiaddr   // 4
	Protocols       []string       // 3
}

// ErrBadIdentify is returned for malformed identify messages.
var ErrBadIdentify = errors.New("bad identify message")

// Marshal encodes m in protobuf wire format.
func (m *IdentifyMsg) Marshal() []byte {
	var b []byte
	if m.PublicKey != nil {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, m.PublicKey)
	}
	for _, a := range m.ListenAddrs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, a.Bytes())
	}
	for _, p := range m.Protocols {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, p)
	}
	if len(m.ObservedAddr) > 0 {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, m.ObservedAddr.Bytes())
	}
	if m.ProtocolVersion != "" {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, m.ProtocolVersion)
	}
	if m.AgentVersion != "" {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendString(b, m.AgentVersion)
	}
	return b
}

// UnmarshalIdentify decodes an identify message. Unknown fields are
// skipped (libp2p peers send signed records); known fields must have their
// wire type; addresses that do not parse are dropped.
func UnmarshalIdentify(b []byte) (*IdentifyMsg, error) {
	if len(b) > MaxIdentifySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadIdentify, len(b))
	}
	m := &IdentifyMsg{}
	for len(b) > 0 {
		num, typ, v, _, n, err := pbwire.Next(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadIdentify, err)
		}
		b = b[n:]
		if num < 1 || num > 6 {
			continue
		}
		if typ != protowire.BytesType {
			return nil, fmt.Errorf("%w: field %d has wire type %d", ErrBadIdentify, num, typ)
		}
		if num != 1 && num != 2 && num != 4 && len(v) > maxIdentifyString {
			return nil, fmt.Errorf("%w: field %d too long", ErrBadIdentify, num)
		}
		switch num {
		case 1:
			m.PublicKey = append([]byte(nil), v...)
		case 2:
			if len(m.ListenAddrs) >= maxIdentifyAddrs {
				return nil, fmt.Errorf("%w: too many addresses", ErrBadIdentify)
			}
			if a, err := ma.NewMultiaddrBytes(v); err == nil {
				m.ListenAddrs = append(m.ListenAddrs, a)
			}
		case 3:
			if len(m.Protocols) >= maxIdentifyProtocols {
				return nil, fmt.Errorf("%w: too many protocols", ErrBadIdentify)
			}
			m.Protocols = append(m.Protocols, string(v))
		case 4:
			if a, err := ma.NewMultiaddrBytes(v); err == nil {
				m.ObservedAddr = a
			}
		case 5:
			m.ProtocolVersion = string(v)
		case 6:
			m.AgentVersion = string(v)
		}
	}
	return m, nil
}

// WriteDelimited writes a uvarint length prefix and msg.
func WriteDelimited(w io.Writer, msg []byte) error {
	b := binary.AppendUvarint(make([]byte, 0, len(msg)+binary.MaxVarintLen64), uint64(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

// ReadDelimited reads a uvarint-length-prefixed message of at most max
// bytes.
func ReadDelimited(r io.ByteReader, rd io.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("message of %d bytes exceeds limit %d", n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rd, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (h *Host) identifyMsg(c *Conn) *IdentifyMsg {
	return &IdentifyMsg{
		ProtocolVersion: h.network + "/1.0.0",
		AgentVersion:    h.cfg.AgentVersion,
		PublicKey:       peer.MarshalPublicKey(h.cfg.Key.Public().(ed25519.PublicKey)),
		ListenAddrs:     h.Addrs(),
		ObservedAddr:    c.raddr,
		Protocols:       h.Protocols(),
	}
}

func (h *Host) serveIdentify(s *Stream) {
	s.SetDeadline(time.Now().Add(h.cfg.NegotiationTimeout))
	if err := WriteDelimited(s, h.identifyMsg(s.conn).Marshal()); err != nil {
		s.conn.log.Debug("identify: send failed", "err", err)
		s.Reset()
		return
	}
	s.Close()
}

// identify asks the peer of a new connection who it is and records the
// answer in the peerstore.
func (h *Host) identify(c *Conn) {
	defer h.wg.Done()
	defer close(c.identified)
	if err := h.runIdentify(c); err != nil {
		if errors.Is(err, mss.ErrNotSupported) {
			// Its identify protocol is not ours: the peer belongs to
			// another network, and networks never share connections.
			err = fmt.Errorf("%w: it does not speak %s", ErrOtherNetwork, h.IdentifyProtocol())
			c.identifyErr = err
			c.closeWithReason(err.Error())
			return
		}
		c.identifyErr = err
		if !c.IsClosed() {
			c.log.Debug("identify failed", "err", err)
		}
		return
	}
	h.emit(Event{Kind: Identified, Peer: c.remote, Conn: c})
}

func (h *Host) runIdentify(c *Conn) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.NegotiationTimeout)
	defer cancel()
	s, err := c.NewStream(ctx, h.IdentifyProtocol())
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(h.cfg.NegotiationTimeout))
	br := bufio.NewReaderSize(s, 512)
	b, err := ReadDelimited(br, br, MaxIdentifySize)
	if err != nil {
		s.Reset()
		return err
	}
	m, err := UnmarshalIdentify(b)
	if err != nil {
		s.Reset()
		return err
	}
	pub, err := peer.UnmarshalPublicKey(m.PublicKey)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadIdentify, err)
	}
	if id, err := peer.IDFromPublicKey(pub); err != nil || id != c.remote {
		return fmt.Errorf("%w: public key of %s, connection to %s", ErrBadIdentify, id, c.remote)
	}
	h.ps.AddAddrs(c.remote, m.ListenAddrs, ConnectedAddrTTL)
	h.ps.SetProtocols(c.remote, m.Protocols)
	c.log.Debug("identified", "agent", m.AgentVersion, "protocols", m.Protocols)
	h.ps.SetAgentVersion(c.remote, m.AgentVersion)
	if len(m.ObservedAddr) > 0 && !c.Relayed() { // a relayed peer saw the relay, not us
		h.recordObserved(m.ObservedAddr, c)
	}
	return nil
}

// recordObserved hands identify's observed address to the observed
// address manager, with the connection it came on.
func (h *Host) recordObserved(a ma.Multiaddr, c *Conn) {
	h.obs.Record(observed.Observation{
		Observed: a, Local: c.laddr, Remote: c.raddr,
		Peer: c.remote, Inbound: c.dir == Inbound,
	}, h.ListenAddrs())
}

// ObservedAddrs returns the addresses peers saw this host at, as they
// reported them (ports included), the most reported first. None is
// confirmed: see Observed.
func (h *Host) ObservedAddrs() []ma.Multiaddr {
	raw := h.obs.Raw()
	out := make([]ma.Multiaddr, len(raw))
	for i, c := range raw {
		out[i] = c.Addr
	}
	return out
}

// Observed returns the host's observed address manager: what peers
// report, and which addresses enough of them confirm.
func (h *Host) Observed() *observed.Manager { return h.obs }
