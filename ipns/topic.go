package ipns

import (
	"encoding/base64"

	"github.com/share-p2p/share/p2p/peer"
)

// Topic is the pubsub topic on which id's records are announced, kubo's
// (IPNS over pubsub, go-libp2p-pubsub-router): "/record/" and the
// unpadded base64url of the routing key, so that a kubo node with
// Ipns.UsePubsub and a share node hear each other's updates.
func Topic(id peer.ID) string {
	return "/record/" + base64.RawURLEncoding.EncodeToString(RoutingKey(id))
}
