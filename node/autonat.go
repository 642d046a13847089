package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/share-p2p/share/metrics"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/autonat"
	"github.com/share-p2p/share/repo"
)

// startAutoNAT starts the AutoNAT client (what this node learns of its
// own reachability) and, unless AutoNAT.ServiceMode is "disabled", the
// server, which dials back from a host of its own: another identity, no
// listen address, an ephemeral port.
func (nw *Network) startAutoNAT(cfg *repo.Config, hcfg p2p.Config, m *metrics.Node) error {
	nw.AutoNAT = autonat.NewClient(nw.Host, autonat.ClientConfig{
		Confirmations: cfg.AutoNAT.Confirmations,
		Logger:        nw.logger,
		OnResult:      func(o string) { m.AutoNAT.With("client", o).Inc() },
	})
	nw.spawn(func() { nw.AutoNAT.Run(nw.ctx) })
	if cfg.AutoNAT.ServiceMode == "disabled" {
		return nil
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	dialer, err := p2p.NewHost(nw.ctx, p2p.Config{
		Key: key, Network: hcfg.Network, Transport: hcfg.Transport,
		Protector: hcfg.Protector, Logger: nw.logger, AgentVersion: hcfg.AgentVersion,
	})
	if err != nil {
		return fmt.Errorf("autonat dialer: %w", err)
	}
	nw.dialer = dialer
	nw.autonatServer = autonat.NewServer(nw.Host, autonat.ServerConfig{
		Dialer:   dialer,
		Logger:   nw.logger,
		OnResult: func(o string) { m.AutoNAT.With("server", o).Inc() },
	})
	return nil
}

// PubliclyReachable reports whether AutoNAT confirmed that some address
// of this node can be dialled from the internet: the condition a relay
// service runs on. It is false on a temporary node, which runs no
// AutoNAT.
func (nw *Network) PubliclyReachable() bool {
	return nw.AutoNAT != nil && nw.AutoNAT.PubliclyReachable()
}

// PrivatelyReachable reports whether AutoNAT found that no address of
// this node can be dialled from the internet: the condition Relay.Client
// "auto" keeps reservations on.
func (nw *Network) PrivatelyReachable() bool {
	return nw.AutoNAT != nil && nw.AutoNAT.Status().Reachability == autonat.Private
}

// closeAutoNAT stops serving AutoNAT and closes the dialer (the client
// stops with the network's context).
func (nw *Network) closeAutoNAT() {
	if nw.autonatServer != nil {
		nw.autonatServer.Close()
	}
	if nw.dialer != nil {
		nw.dialer.Close()
	}
}

// reachability fills what `share id` says of reachability.
func (nw *Network) reachability(info *IDInfo) {
	info.Reachability = autonat.Unknown.String()
	info.PublicAddresses, info.ObservedAddresses = []string{}, []string{}
	if nw == nil || nw.AutoNAT == nil {
		return
	}
	st := nw.AutoNAT.Status()
	info.Reachability = st.Reachability.String()
	for _, a := range st.Reachable {
		info.PublicAddresses = append(info.PublicAddresses, a.String())
	}
	for _, a := range nw.Host.Observed().Confirmed() {
		info.ObservedAddresses = append(info.ObservedAddresses, a.String())
	}
}
