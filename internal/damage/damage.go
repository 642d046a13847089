// Package damage corrupts stored data on purpose, for tests of what the
// store, the node and the CLI say about a damaged repository.
package damage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Flip flips one bit of the first copy of needle found in an sstable of
// the Pebble database in dir (its middle byte), as a failing disk would,
// and returns the file's path. Blocks are stored uncompressed, so a
// block's bytes are found as they are.
func Flip(dir string, needle []byte) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		i := bytes.Index(data, needle)
		if i < 0 {
			continue
		}
		data[i+len(needle)/2] ^= 1
		return f, os.WriteFile(f, data, 0o644)
	}
	return "", fmt.Errorf("damage: no sstable in %s holds the %d bytes", dir, len(needle))
}
