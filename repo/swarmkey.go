package repo

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// A swarm key file holds a private network's 256-bit pre-shared key in the
// libp2p format (pnet/Private-Networks-PSK-V1), e.g.
//
//	/key/swarm/psk/1.0.0/
//	/base16/
//	dffb7e3135399a8b1612b2aaca1c36a3a8ac2cd0cca51ceeb2ced87d308cac6d
//
// The second line may also be /base64/ (standard padded base64 of the key)
// or /bin/ (the 32 raw bytes, nothing after them), as the spec allows.
const swarmKeyHeader = "/key/swarm/psk/1.0.0/"

// maxSwarmKeyFile bounds what LoadSwarmKey reads: a valid file has about
// 100 bytes.
const maxSwarmKeyFile = 1024

// GenerateSwarmKey writes a new random swarm key to path (mode 0600), in
// the /base16/ form. It refuses to replace an existing file: losing a key
// cuts a node off from its network.
func GenerateSwarmKey(path string) error {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("swarm key %s: %w", path, err)
	}
	data := swarmKeyHeader + "\n/base16/\n" + hex.EncodeToString(key[:]) + "\n"
	if err := writeFileNew(path, []byte(data), 0o600); err != nil {
		return fmt.Errorf("swarm key %s: %w", path, err)
	}
	return nil
}

// LoadSwarmKey reads the swarm key at path. It returns nil and no error
// when the file does not exist (the node is in the public network), and an
// error naming the file when it exists but is not a valid swarm key.
func LoadSwarmKey(path string) (*[32]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("swarm key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSwarmKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("swarm key %s: %w", path, err)
	}
	if len(data) > maxSwarmKeyFile {
		return nil, fmt.Errorf("swarm key %s: larger than %d bytes", path, maxSwarmKeyFile)
	}
	key, err := parseSwarmKey(data)
	if err != nil {
		return nil, fmt.Errorf("swarm key %s: %w", path, err)
	}
	return &key, nil
}

// parseSwarmKey decodes a swarm key file. It is strict: the two header
// lines exactly, then the key in the announced encoding, then at most one
// line ending. Lines may end in "\r\n".
func parseSwarmKey(data []byte) (key [32]byte, err error) {
	line, rest, err := nextLine(data)
	if err != nil || line != swarmKeyHeader {
		return key, fmt.Errorf("line 1: want %q", swarmKeyHeader)
	}
	enc, rest, err := nextLine(rest)
	if err != nil {
		return key, errors.New("line 2: want the encoding (/base16/, /base64/ or /bin/)")
	}
	if enc == "/bin/" {
		if len(rest) != len(key) {
			return key, fmt.Errorf("/bin/ key: %d bytes after the header, want %d", len(rest), len(key))
		}
		copy(key[:], rest)
		return key, nil
	}
	text, extra := rest, false
	if l, after, err := nextLine(rest); err == nil {
		text, extra = []byte(l), len(after) != 0
	}
	var raw []byte
	switch enc {
	case "/base16/":
		if len(text) != 2*len(key) {
			return key, fmt.Errorf("line 3: want %d hex digits, got %d characters", 2*len(key), len(text))
		}
		raw, err = hex.DecodeString(string(text))
	case "/base64/":
		raw, err = base64.StdEncoding.Strict().DecodeString(string(text))
	default:
		return key, fmt.Errorf("line 2: unknown encoding %q (want /base16/, /base64/ or /bin/)", enc)
	}
	if err != nil {
		return key, fmt.Errorf("line 3: %s key: %w", enc, err)
	}
	if len(raw) != len(key) {
		return key, fmt.Errorf("line 3: key is %d bytes, want %d", len(raw), len(key))
	}
	if extra {
		return key, errors.New("line 4: unexpected content after the key")
	}
	copy(key[:], raw)
	return key, nil
}

// nextLine splits off the first line, without its "\n" or "\r\n"; it
// fails when data has no "\n".
func nextLine(data []byte) (string, []byte, error) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return "", nil, io.ErrUnexpectedEOF
	}
	return string(bytes.TrimSuffix(data[:i], []byte("\r"))), data[i+1:], nil
}

// writeFileNew writes data to a new file at path, atomically and durably,
// and fails if path exists (see writeFile).
func writeFileNew(path string, data []byte, mode os.FileMode) error {
	err := writeFile(path, data, mode, false)
	if errors.Is(err, os.ErrExist) {
		return errors.New("already exists; remove it first to replace the key")
	}
	return err
}
