package node

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/mss"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/send"
)

// SendOptions control Send.
type SendOptions struct {
	// Network starts the node's network (Temporary is implied).
	Network NetworkOptions
	// Code is the code to send under; the zero Code draws one (tests set
	// it).
	Code send.Code
	// OnCode is called once the content is added and the sender waits.
	OnCode func(send.Code, send.Offer)
	// OnEvent sees the sender's events (wrong codes, progress).
	OnEvent func(send.Event)
}

// sendProtocol is the send protocol's ID on nw's network.
func (nw *Network) sendProtocol() string { return nw.Host.Protocol("send") }

// reannounce is how often a sender repeats its rendezvous record in the
// DHT once it is there.
const reannounce = 10 * time.Minute

// Send adds path to the node (which should be a temporary repository of
// its own: it serves nothing but path), starts the network, and serves
// path under a code until one receiver has it all (the Result), too many
// wrong codes were given (send.ErrTooManyTries) or ctx ends. Only the
// code's rendezvous is announced, never the content's CID, and blocks
// are served only to a receiver that proved the code.
func (n *Node) Send(ctx context.Context, path string, opts SendOptions) (send.Result, error) {
	offer, err := n.addForSend(ctx, path)
	if err != nil {
		return send.Result{}, err
	}
	code := opts.Code
	if code.Number == 0 {
		if code, err = send.NewCode(); err != nil {
			return send.Result{}, err
		}
	}
	network := n.Repo.Config().Network
	sender := send.NewSender(send.SenderConfig{Code: code, Network: network, Self: n.Repo.Identity.ID, Offer: offer, OnEvent: opts.OnEvent})
	nopts := opts.Network
	nopts.Temporary = true
	nopts.ExchangeConfig.Serves = sender.Allowed
	nw, err := n.startNetworkOnce(ctx, nopts)
	if err != nil {
		return send.Result{}, err
	}
	nw.Host.Streams().SetHandler(nw.sendProtocol(), sender.Handle)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	go nw.announceRendezvous(actx, code.Rendezvous(network))
	if opts.OnCode != nil {
		opts.OnCode(code, offer)
	}
	select {
	case <-ctx.Done():
		return send.Result{}, errs.E(errs.Canceled, ctx.Err())
	case <-sender.Done():
		return sender.Result()
	}
}

// startNetworkOnce starts the node's network with opts, once.
func (n *Node) startNetworkOnce(ctx context.Context, opts NetworkOptions) (*Network, error) {
	n.netMu.Lock()
	defer n.netMu.Unlock()
	if n.net != nil {
		return nil, errs.Errorf(errs.InUse, "the node's network already runs")
	}
	nw, err := n.StartNetwork(ctx, opts)
	if err != nil {
		return nil, err
	}
	n.netSince = time.Now()
	return nw, nil
}

// addForSend adds path (before the network runs, so that its CID is
// announced nowhere) and describes it.
func (n *Node) addForSend(ctx context.Context, path string) (send.Offer, error) {
	size, err := treeSize(path)
	if err != nil {
		return send.Offer{}, err
	}
	root, err := n.Add(ctx, path, nil, AddOptions{Recursive: true}, nil)
	if err != nil {
		return send.Offer{}, err
	}
	return send.Offer{Root: root, Name: filepath.Base(filepath.Clean(path)), Size: uint64(size)}, nil
}

// treeSize is the bytes of the regular files at or under path.
func treeSize(path string) (int64, error) {
	var size int64
	err := filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, errs.E(errs.KindOf(err), "send "+path, errors.Unwrap(err))
	}
	return size, nil
}

// announceRendezvous puts the rendezvous record in the DHT: soon again
// while it fails (the table fills after the start), every reannounce once
// it worked, until ctx ends.
func (nw *Network) announceRendezvous(ctx context.Context, key cid.Cid) {
	if nw.Routing == nil {
		return
	}
	backoff := 200 * time.Millisecond
	for {
		// Straight to the DHT: Provide.Strategy (none on a sender's
		// repository, so that nothing else is announced) is about content.
		actx, cancel := context.WithTimeout(ctx, reannounce)
		err := nw.Routing.Provide(actx, [][]byte{key.Hash()})
		cancel()
		nw.logger.Debug("send: rendezvous announced", "err", err)
		next := reannounce
		if err != nil {
			next, backoff = backoff, min(2*backoff, reannounce)
		}
		if !wait(ctx, next) {
			return
		}
	}
}

// wait waits d and reports whether ctx is still alive.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ReceiveOptions control Receive.
type ReceiveOptions struct {
	// Network starts the node's network (Temporary is implied).
	Network NetworkOptions
	// Find bounds the search for the sender (default DefaultTimeout).
	Find time.Duration
	// Out is where to write what was sent (default: its name in the
	// current directory).
	Out string
	// Refused sees each symlink not written because its target leads out
	// of Out or is absolute (what is sent is written with dag.SafeLinks).
	Refused func(path, target, why string)
	// OnOffer is called once the sender confirmed the code, before the
	// fetch; an error stops the receive.
	OnOffer func(offer send.Offer, out string) error
	// Fetch tunes the fetch (timeout, progress).
	Fetch FetchOptions
}

// Receive finds the sender of code on the LAN (mDNS) or in the DHT,
// proves the code, fetches what it sends with the ordinary fetch (from
// the sender and any other provider) and writes it to opts.Out; it tells
// the sender once everything is here. A wrong code fails after one try
// with send.ErrWrongCode (the sender is told).
func (n *Node) Receive(ctx context.Context, code send.Code, opts ReceiveOptions) (send.Offer, error) {
	nopts := opts.Network
	nopts.Temporary = true
	// The fetch asks the connected peers for the root, which tells them
	// its CID: the receiver serves nobody, so that knowing it is not
	// enough to fetch it here (nor from the sender, which serves only us).
	nopts.ExchangeConfig.Serves = func(peer.ID) bool { return false }
	nw, err := n.startNetworkOnce(ctx, nopts)
	if err != nil {
		return send.Offer{}, err
	}
	tr, err := nw.findSender(ctx, code, cmp(opts.Find, DefaultTimeout))
	if err != nil {
		return send.Offer{}, err
	}
	defer tr.Close()
	out := opts.Out
	if out == "" {
		if out, err = localName(tr.Offer.Name); err != nil {
			return tr.Offer, err
		}
	}
	if opts.OnOffer != nil {
		if err := opts.OnOffer(tr.Offer, out); err != nil {
			return tr.Offer, err
		}
	}
	var got atomic.Int64
	fopts := opts.Fetch
	fopts.Progress = func(p Progress) {
		got.Store(p.Bytes)
		if opts.Fetch.Progress != nil {
			opts.Fetch.Progress(p)
		}
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); reportProgress(pctx, tr, &got) }()
	err = n.Get(ctx, tr.Offer.Root, out, GetOptions{FetchOptions: fopts, Refused: opts.Refused})
	stop()
	<-done
	if err != nil {
		return tr.Offer, err
	}
	return tr.Offer, tr.Done(tr.Offer.Size)
}

// reportProgress tells the sender how much is here until ctx ends (it
// also keeps the send stream from idling out during a long fetch).
func reportProgress(ctx context.Context, tr *send.Transfer, got *atomic.Int64) {
	for wait(ctx, send.ProgressInterval) {
		if tr.Progress(uint64(got.Load())) != nil {
			return
		}
	}
}

func cmp(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// localName is the file name a sender's name gives in the current
// directory: one plain name, never a path that leaves it.
func localName(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", errs.Errorf(errs.Invalid, "receive: the sender names it %q, which is not a file name here: give -o PATH", name)
	}
	return name, nil
}

// findSender tries the peers it meets (the LAN's, those the DHT gives
// for the rendezvous) until one is the sender of code and confirms it.
func (nw *Network) findSender(ctx context.Context, code send.Code, limit time.Duration) (*send.Transfer, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	go nw.findRendezvous(ctx, code.Rendezvous(nw.Host.Network()))
	sub := nw.Host.Subscribe()
	defer sub.Close()
	tries := make(map[peer.ID]int) // how often a peer was tried; -1: settled
	busy := false
	for {
		// A wrong code ends the search once the peers met so far were
		// tried: another sender may wait under the same number.
		wrong := false
		for _, p := range nw.Host.Peers() {
			tr, err := nw.trySender(ctx, p, code, tries)
			switch {
			case err == nil:
				return tr, nil
			case errors.Is(err, send.ErrWrongCode):
				wrong = true
			case errors.Is(err, send.ErrBusy):
				busy = true
			}
		}
		if wrong {
			return nil, send.ErrWrongCode
		}
		select {
		case <-ctx.Done():
			return nil, noSender(ctx, code, busy)
		case <-sub.Events():
		case <-time.After(time.Second):
		}
	}
}

// trySender runs the exchange with p unless p was settled; a peer that
// does not speak the protocol is asked again a few times (its handler
// may not have been set when it was met).
func (nw *Network) trySender(ctx context.Context, p peer.ID, code send.Code, tries map[peer.ID]int) (*send.Transfer, error) {
	if tries[p] < 0 || tries[p] >= 3 {
		return nil, errSettled
	}
	tries[p]++
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := nw.Host.Streams().NewStream(sctx, p, nw.sendProtocol())
	cancel()
	if err != nil {
		if !errors.Is(err, mss.ErrNotSupported) {
			tries[p] = -1
		}
		return nil, err
	}
	tr, err := send.Receive(st, nw.Host.ID(), code, nw.Host.Network())
	if err != nil {
		st.Reset()
		tries[p] = -1
		return nil, err
	}
	return tr, nil
}

// errSettled is a peer already tried.
var errSettled = errors.New("receive: peer already tried")

// noSender is the error of a search that found no sender.
func noSender(ctx context.Context, code send.Code, busy bool) error {
	if busy {
		return send.ErrBusy
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return errs.E(errs.Canceled, ctx.Err())
	}
	return errs.Errorf(errs.NotFound, "receive: no sender of code %d-... found on this LAN or in the DHT (is 'share send' still running? check the number)", code.Number)
}

// findRendezvous looks the rendezvous up in the DHT and dials the peers
// it names, again and again until ctx ends.
func (nw *Network) findRendezvous(ctx context.Context, key cid.Cid) {
	if nw.Provider == nil {
		return
	}
	for {
		for ai := range nw.Provider.FindProviders(ctx, key, 0) {
			if ai.ID != nw.Host.ID() {
				go nw.Host.Connect(ctx, ai)
			}
		}
		if !wait(ctx, 2*time.Second) {
			return
		}
	}
}
