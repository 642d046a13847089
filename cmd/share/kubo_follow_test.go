package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/share-p2p/share/internal/kubotest"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/p2p/peer"
)

// TestKuboFollow: on network ipfs, share follows a name kubo 0.43.1
// publishes with IPNS over pubsub (Ipns.UsePubsub): kubo's record,
// announced on kubo's topic for the name, reaches share's daemon, which
// writes the folder (fetched from kubo over bitswap).
func TestKuboFollow(t *testing.T) {
	k := kubotest.StartWith(t, map[string]string{"Pubsub.Enabled": "true", "Ipns.UsePubsub": "true"})
	rp := t.TempDir()
	configure(t, rp, "Network", "ipfs")
	startDaemon(t, rp)
	var self struct{ ID string }
	json.Unmarshal([]byte(ok(t, rp, "id", "--json")), &self)
	ok(t, rp, "connect", k.Addr)
	kid, err := peer.Decode(k.ID)
	if err != nil {
		t.Fatal(err)
	}
	topic := ipns.Topic(kid)

	dir := filepath.Join(t.TempDir(), "followed")
	lines := followSides{fol: func(args ...string) *exec.Cmd {
		cmd := exec.Command(shareBin, args...)
		cmd.Env = append(os.Environ(), "SHARE_PATH="+rp)
		return cmd
	}}.startFollow(t, ipns.Name(kid), dir)
	waitFor(t, 30*time.Second, "kubo to see share subscribe to its name's topic", func() bool {
		out, _ := k.Try(nil, "pubsub", "peers", topic)
		return strings.Contains(string(out), self.ID)
	})

	src := filepath.Join(t.TempDir(), "site")
	files := map[string][]byte{"index.html": []byte("<p>from kubo</p>\n"), "data/blob.bin": randBytes(t, 300<<10)}
	for p, b := range files {
		writeFile(t, filepath.Join(src, p), b)
	}
	root := strings.TrimSpace(string(k.Run("add", "-r", "-Q", "--cid-version", "1", src)))
	start := time.Now()
	if out, err := k.Try(nil, "name", "publish", "--allow-offline", "/ipfs/"+root); err != nil {
		t.Logf("ipfs name publish: %v %s (the DHT has no peers; the pubsub announcement went out)", err, out)
	}
	l := nextVersion(t, lines, 30*time.Second)
	t.Logf("share wrote kubo's version %v after ipfs name publish: %+v", time.Since(start), l)
	if l.Cid != root {
		t.Fatalf("share followed to %s, want kubo's %s", l.Cid, root)
	}
	checkFolder(t, dir, files)
}

// TestKuboReceivesShareName: the other way, share's name publish
// announces the record on the topic kubo (Ipns.UsePubsub) listens on
// once it has resolved the name, and kubo then resolves it. share's DHT
// is off: kubo can learn the record by pubsub only.
func TestKuboReceivesShareName(t *testing.T) {
	k := kubotest.StartWith(t, map[string]string{"Pubsub.Enabled": "true", "Ipns.UsePubsub": "true"})
	rp := t.TempDir()
	configure(t, rp, "Network", "ipfs", "Routing.Mode", "off")
	startDaemon(t, rp)
	ok(t, rp, "connect", k.Addr)
	name := nameOf(t, rp)
	id, _ := ipns.ParseName(name)
	// kubo's first resolve finds nothing but subscribes to the topic.
	k.Try(nil, "name", "resolve", "--timeout", "2s", "/ipns/"+name)
	waitFor(t, 30*time.Second, "share to see kubo subscribe to its name's topic", func() bool {
		return strings.Contains(ok(t, rp, "pubsub", "peers", ipns.Topic(id)), k.ID)
	})
	src := filepath.Join(t.TempDir(), "note.txt")
	writeFile(t, src, []byte("from share\n"))
	c := strings.TrimSpace(ok(t, rp, "add", "-Q", src))
	run(t, rp, nil, "name", "publish", c) // "published here only: the DHT is off", and announced
	waitFor(t, 20*time.Second, "kubo to resolve share's name to "+c, func() bool {
		out, _ := k.Try(nil, "name", "resolve", "--timeout", "2s", "/ipns/"+name)
		return strings.TrimSpace(string(out)) == "/ipfs/"+c
	})
}
