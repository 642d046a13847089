package p2p

import "fmt"

// DefaultNetwork is the network name used when Config.Network is empty.
const DefaultNetwork = "share"

// ProtocolID returns the ID of a protocol of a network:
// ProtocolID("share", "kad", "1.0.0") is "/share/kad/1.0.0".
func ProtocolID(network, name, version string) string {
	return fmt.Sprintf("/%s/%s/%s", network, name, version)
}

// Protocol returns the ID of version 1.0.0 of a protocol on this host's
// network: h.Protocol("blocks") is "/share/blocks/1.0.0" by default.
func (h *Host) Protocol(name string) string {
	return ProtocolID(h.network, name, "1.0.0")
}

// IdentifyProtocol returns the identify protocol ID of this host's network.
func (h *Host) IdentifyProtocol() string { return h.Protocol("id") }

// PingProtocol returns the ping protocol ID of this host's network.
func (h *Host) PingProtocol() string { return h.Protocol("ping") }
