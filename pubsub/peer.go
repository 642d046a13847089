package pubsub

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
)

// Timeouts of the wire: opening a stream, writing one RPC, reading the
// body of one RPC once its length arrived (waiting for the next RPC has
// no deadline: the stream lives as long as the connection).
const (
	openTimeout  = 30 * time.Second
	writeTimeout = 10 * time.Second
	readTimeout  = 30 * time.Second
)

// peerConn is a pubsub peer: its outbound stream's queue and what it
// announced. Its fields other than out are guarded by PubSub.mu.
type peerConn struct {
	id     peer.ID
	ctx    context.Context
	cancel context.CancelFunc
	out    *outQueue     // frames, bounded: a full queue drops (or makes Publish wait)
	ready  chan struct{} // closed once the outbound stream opened or failed
	proto  string        // of the outbound stream, once open
	topics map[string]struct{}
	in     share.Stream // the inbound stream being read
	// outbound: this node dialled the connection (the mesh's quota).
	outbound bool
	// dial: the writer may dial the peer (one offered by peer exchange);
	// any other peer's stream opens only on a connection it already has,
	// as go-libp2p-pubsub's: a stream that comes in as its connection
	// closes must not make this node dial the peer back (a bootstrap
	// peer's pubsub then held the connection its client meant to redial).
	dial  bool
	drops *atomic.Int64 // the PubSub's queueDrops
	// Per heartbeat: IHAVEs heeded and message IDs asked of the peer.
	ihaves, asked int
}

func (pc *peerConn) floodsub() bool { return pc.proto == ProtocolFloodsub }

// send queues a frame for the peer, or drops it if the queue is full.
func (pc *peerConn) send(fr []byte) {
	if !pc.out.push(fr) {
		pc.drops.Add(1)
	}
}

// errPeerGone: a peer went while a frame waited for room in its queue.
var errPeerGone = errors.New("pubsub peer gone")

// addPeer starts talking to p, if not already: a writer goroutine opens
// the outbound stream and sends this node's subscriptions first.
func (ps *PubSub) addPeer(p peer.ID) *peerConn {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.addPeerLocked(p, false)
}

func (ps *PubSub) addPeerLocked(p peer.ID, dial bool) *peerConn {
	if pc := ps.peers[p]; pc != nil || ps.closed || p == ps.self {
		return pc
	}
	ctx, cancel := context.WithCancel(ps.ctx)
	pc := &peerConn{id: p, ctx: ctx, cancel: cancel, out: newOutQueue(ps.cfg.QueueSize, ps.cfg.QueueBytes), ready: make(chan struct{}),
		topics: make(map[string]struct{}), outbound: ps.cfg.Outbound(p), drops: &ps.counts.queueDrops, dial: dial}
	ps.peers[p] = pc
	if s := ps.stats[p]; s != nil {
		s.gone = time.Time{}
	}
	ps.wg.Add(1)
	go ps.runWriter(pc)
	return pc
}

// removePeer forgets pc (if it is still p's): it leaves every mesh and
// topic, its streams are reset, its score is retained for a while.
func (ps *PubSub) removePeer(pc *peerConn) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.peers[pc.id] != pc {
		return
	}
	delete(ps.peers, pc.id)
	pc.cancel()
	if pc.in != nil {
		pc.in.Reset()
	}
	now := time.Now()
	for name := range pc.topics {
		if t := ps.topics[name]; t != nil {
			delete(t.peers, pc.id)
			ps.dropFromMeshLocked(t, name, pc.id)
			delete(t.fanout, pc.id)
		}
	}
	if s := ps.stats[pc.id]; s != nil {
		s.gone = now
	}
}

// runWriter opens pc's outbound stream and writes its queue to it until
// the peer goes or a write fails.
func (ps *PubSub) runWriter(pc *peerConn) {
	defer ps.wg.Done()
	defer ps.removePeer(pc)
	s, proto, err := ps.open(pc.ctx, pc.id, pc.dial)
	close(pc.ready)
	if err != nil {
		ps.cfg.Logger.Debug("pubsub stream", "peer", pc.id, "err", err)
		return
	}
	defer s.Reset()
	ps.mu.Lock()
	pc.proto = proto
	hello := ps.helloLocked()
	ps.mu.Unlock()
	bw := bufio.NewWriterSize(s, 32<<10)
	if hello != nil && ps.write(s, bw, [][]byte{hello}) != nil {
		return
	}
	if hello == nil && flushProposal(s) != nil {
		return
	}
	var spare [][]byte
	for {
		select {
		case <-pc.ctx.Done():
			return
		case <-pc.out.wake:
		}
		batch := pc.out.take(spare)
		if err := ps.write(s, bw, batch); err != nil {
			ps.cfg.Logger.Debug("pubsub write", "peer", pc.id, "err", err)
			return
		}
		clear(batch) // the frames are garbage once written
		spare = batch
	}
}

// write writes a batch of frames and flushes them, within writeTimeout.
func (ps *PubSub) write(s share.Stream, bw *bufio.Writer, batch [][]byte) error {
	s.SetWriteDeadline(time.Now().Add(writeTimeout))
	for _, fr := range batch {
		if _, err := bw.Write(fr); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// flushProposal sends an optimistic stream's protocol proposal when there
// is nothing to write yet (no subscriptions): it would otherwise wait for
// the first RPC, and the peer resets a stream it cannot negotiate within
// its timeout (10 s), after which this peer would hear nothing of ours.
func flushProposal(s share.Stream) error {
	if f, ok := s.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// open opens a stream to p in the first protocol it takes, on a
// connection it has unless dial.
func (ps *PubSub) open(ctx context.Context, p peer.ID, dial bool) (share.Stream, string, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	var errs []error
	for _, proto := range ps.cfg.Protocols {
		if c, ok := ps.h.(interface{ Connected(peer.ID) bool }); ok && !dial && !c.Connected(p) {
			return nil, "", errors.New("pubsub: not connected")
		}
		s, err := ps.h.NewStream(ctx, p, proto)
		if err == nil {
			return s, proto, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", errors.Join(errs...)
}

// helloLocked is the first RPC to a peer: this node's subscriptions.
func (ps *PubSub) helloLocked() []byte {
	var r RPC
	for name, t := range ps.topics {
		if t.mesh != nil {
			r.Subs = append(r.Subs, SubOpt{Subscribe: true, Topic: name})
		}
	}
	if len(r.Subs) == 0 {
		return nil
	}
	return frame(&r)
}

// handleStream reads a peer's inbound stream: one at a time per peer, a
// newer one replacing the older (kubo reopens after a reset).
func (ps *PubSub) handleStream(s share.Stream) {
	p := s.RemotePeer()
	ps.mu.Lock()
	pc := ps.addPeerLocked(p, false)
	if pc == nil {
		ps.mu.Unlock()
		s.Reset()
		return
	}
	ps.wg.Add(1) // under mu, so never after Close's Wait began
	defer ps.wg.Done()
	if pc.in != nil {
		pc.in.Reset()
	}
	pc.in = s
	ps.mu.Unlock()
	err := ps.readLoop(pc, s)
	ps.cfg.Logger.Debug("pubsub inbound ended", "peer", p, "err", err)
	s.Reset()
	ps.mu.Lock()
	replaced := pc.in != s
	ps.mu.Unlock()
	if !replaced {
		ps.removePeer(pc)
	}
}

// errOversize: a peer announced an RPC larger than MaxMessageSize.
var errOversize = errors.New("oversize RPC")

// readLoop reads and handles RPCs until the stream ends.
func (ps *PubSub) readLoop(pc *peerConn, s share.Stream) error {
	br := bufio.NewReaderSize(s, 16<<10)
	var scratch []byte // for signature checks
	for {
		s.SetReadDeadline(time.Time{})
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return err
		}
		if n > uint64(ps.cfg.MaxMessageSize) {
			ps.penalize(pc.id, 1)
			return fmt.Errorf("%w: %d bytes", errOversize, n)
		}
		s.SetReadDeadline(time.Now().Add(readTimeout))
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return err
		}
		r, err := UnmarshalRPC(body)
		if err != nil {
			ps.penalize(pc.id, 1)
			return err
		}
		scratch = ps.handleRPC(pc, r, scratch)
	}
}

// penalize adds n behaviour points to p (P7).
func (ps *PubSub) penalize(p peer.ID, n float64) {
	ps.mu.Lock()
	ps.statsLocked(p).behaviour += n
	ps.mu.Unlock()
}
