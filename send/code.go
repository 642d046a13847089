package send

import (
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/errs"
)

// words.txt is BIP-39's English word list (MIT licence, bitcoin/bips):
// 2048 words of 3 to 8 letters, no two sharing their first four.
//
//go:embed words.txt
var wordFile string

var wordList = sync.OnceValues(func() ([]string, map[string]int) {
	words := strings.Fields(wordFile)
	index := make(map[string]int, len(words))
	for i, w := range words {
		index[w] = i
	}
	return words, index
})

// Code sizes: a number from 1 to MaxNumber, public (it names the
// rendezvous), and Words words of the list, secret (the PAKE's password).
const (
	MaxNumber = 999
	Words     = 2
)

// Code is what a sender shows and a receiver types: "7-crystal-tunnel".
type Code struct {
	Number int
	Words  [Words]string
}

// NewCode draws a code at random: 22 secret bits (two words of 2048) and
// a number of 1 to 999.
func NewCode() (Code, error) {
	words, _ := wordList()
	n, err := rand.Int(rand.Reader, big.NewInt(MaxNumber))
	if err != nil {
		return Code{}, err
	}
	c := Code{Number: int(n.Int64()) + 1}
	for i := range c.Words {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(words))))
		if err != nil {
			return Code{}, err
		}
		c.Words[i] = words[k.Int64()]
	}
	return c, nil
}

// ParseCode parses a code as typed: case and spaces around it do not
// matter; a word that is not on the list is an error naming it.
func ParseCode(s string) (Code, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "-")
	if len(parts) != Words+1 {
		return Code{}, errs.Errorf(errs.Invalid, "code %q: want a number and %d words, like 7-crystal-tunnel", s, Words)
	}
	n, err := strconv.Atoi(parts[0])
	if err != nil || n < 1 || n > MaxNumber {
		return Code{}, errs.Errorf(errs.Invalid, "code %q: %q is not a number from 1 to %d", s, parts[0], MaxNumber)
	}
	_, index := wordList()
	c := Code{Number: n}
	for i, w := range parts[1:] {
		if _, ok := index[w]; !ok {
			return Code{}, errs.Errorf(errs.Invalid, "code %q: %q is not one of the code words (check its spelling)", s, w)
		}
		c.Words[i] = w
	}
	return c, nil
}

// String is the code as it is shown.
func (c Code) String() string {
	return fmt.Sprintf("%d-%s", c.Number, strings.Join(c.Words[:], "-"))
}

// rendezvousContext separates the rendezvous hash from every other use.
const rendezvousContext = "share send rendezvous v1"

// Rendezvous is where a sender of c waits on network: a CID whose
// multihash is SHA-256 of the context, the network and the code's number,
// never its words. The sender announces it as a provider record in the
// DHT and expects it in every hello; it reveals the number only.
func (c Code) Rendezvous(network string) cid.Cid {
	sum := sha256.Sum256([]byte(rendezvousContext + "\x00" + network + "\x00" + strconv.Itoa(c.Number)))
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil {
		panic(err) // a 32-byte SHA-256 always encodes
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// password is the PAKE's secret: the whole code.
func (c Code) password() []byte { return []byte(c.String()) }
