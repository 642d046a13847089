package ipns

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/share-p2p/share/internal/kubotest"
)

// TestKuboVerifiesShareRecords has kubo's `ipfs name inspect --verify`
// check a record share made: kubo parses it, takes its signature and
// reads its fields as share wrote them.
func TestKuboVerifiesShareRecords(t *testing.T) {
	bin := kubotest.Binary(t)
	id, priv := newKey(t)
	r, err := New(priv, []byte("/ipfs/bafkqaaa"), 42, time.Now().Add(time.Hour), 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "name", "inspect", "--verify", Name(id))
	cmd.Env = append(os.Environ(), "IPFS_PATH="+t.TempDir())
	cmd.Stdin = bytes.NewReader(r.Marshal())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ipfs name inspect: %v\n%s", err, out)
	}
	for _, want := range []string{`Value:          "/ipfs/bafkqaaa"`, "Sequence:       42", "TTL:            1m30s", "Signature Type: V1+V2", "Valid: true", "Name:  " + Name(id)} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubo's inspection lacks %q:\n%s", want, out)
		}
	}
}
