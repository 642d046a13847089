package ipns

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/share-p2p/share/p2p/peer"
)

func TestTopic(t *testing.T) {
	id, err := peer.Decode("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
	if err != nil {
		t.Fatal(err)
	}
	got := Topic(id)
	rest, ok := strings.CutPrefix(got, "/record/")
	if !ok || strings.ContainsAny(rest, "=+/") {
		t.Fatalf("Topic = %q: want /record/ and unpadded base64url", got)
	}
	key, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || string(key) != "/ipns/"+string(id) {
		t.Fatalf("Topic %q decodes to %q, %v", got, key, err)
	}
}
