package peer

import (
	"errors"
	"fmt"

	ma "github.com/multiformats/go-multiaddr"
)

// AddrInfo is a peer and the transport addresses it can be reached at
// (without the /p2p part).
type AddrInfo struct {
	ID    ID
	Addrs []ma.Multiaddr
}

// ErrNoP2P is returned for multiaddrs that end without a /p2p component.
var ErrNoP2P = errors.New("multiaddr has no /p2p component")

// SplitAddr splits "/ip4/1.2.3.4/tcp/1/p2p/ID" into its transport part and
// the PeerID. A multiaddr without /p2p returns itself and an empty ID.
func SplitAddr(m ma.Multiaddr) (ma.Multiaddr, ID, error) {
	if len(m) == 0 {
		return nil, "", fmt.Errorf("empty multiaddr")
	}
	rest, last := ma.SplitLast(m)
	if last == nil || last.Code() != ma.P_P2P {
		return m, "", nil
	}
	id := ID(last.RawValue())
	if err := id.Validate(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", m, err)
	}
	return rest, id, nil
}

// AddrInfoFromP2pAddr parses a dial target "/ip4/.../tcp/N/p2p/ID" (the
// transport part may be empty: "/p2p/ID").
func AddrInfoFromP2pAddr(m ma.Multiaddr) (AddrInfo, error) {
	tr, id, err := SplitAddr(m)
	if err != nil {
		return AddrInfo{}, err
	}
	if id == "" {
		return AddrInfo{}, fmt.Errorf("%s: %w", m, ErrNoP2P)
	}
	ai := AddrInfo{ID: id}
	if len(tr) > 0 {
		ai.Addrs = []ma.Multiaddr{tr}
	}
	return ai, nil
}

// AddrInfoFromString parses a dial target in its string form.
func AddrInfoFromString(s string) (AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return AddrInfo{}, err
	}
	return AddrInfoFromP2pAddr(m)
}

// AddrInfosFromP2pAddrs groups dial targets by peer, keeping their order.
func AddrInfosFromP2pAddrs(ms ...ma.Multiaddr) ([]AddrInfo, error) {
	var out []AddrInfo
	idx := map[ID]int{}
	for _, m := range ms {
		ai, err := AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, err
		}
		i, ok := idx[ai.ID]
		if !ok {
			idx[ai.ID] = len(out)
			out = append(out, ai)
			continue
		}
		out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
	}
	return out, nil
}

// P2pComponent returns the /p2p/ID component of id.
func (id ID) P2pComponent() *ma.Component {
	c, err := ma.NewComponent("p2p", id.String())
	if err != nil {
		// id is not valid: an empty component would silently drop it.
		panic(fmt.Sprintf("peer: invalid ID %q in /p2p component: %v", string(id), err))
	}
	return c
}

// P2pAddrs returns the addresses with /p2p/ID appended: the dial targets
// that "share id" prints.
func (ai AddrInfo) P2pAddrs() []ma.Multiaddr {
	p2p := ai.ID.P2pComponent()
	if len(ai.Addrs) == 0 {
		return []ma.Multiaddr{p2p.Multiaddr()}
	}
	out := make([]ma.Multiaddr, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		out = append(out, a.Encapsulate(p2p))
	}
	return out
}

// String prints the AddrInfo as "{ID: [addrs]}".
func (ai AddrInfo) String() string {
	return fmt.Sprintf("{%s: %v}", ai.ID, ai.Addrs)
}
