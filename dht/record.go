package dht

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/share-p2p/share/internal/pbwire"
)

// MaxValueSize bounds the value of a record in a message; a namespace's
// validator may allow less (IPNS: 10 KiB).
const MaxValueSize = 64 << 10

// Record is the value record of PUT_VALUE and GET_VALUE (libp2p's
// record.proto: key 1, value 2, timeReceived 5).
type Record struct {
	Key, Value []byte
	// TimeReceived is what kad-dht sets when it stores a record (RFC
	// 3339); it is carried, never trusted.
	TimeReceived string
}

// appendField appends r as field num of a message.
func (r *Record) appendField(b []byte, num protowire.Number) []byte {
	n := 0
	if len(r.Key) > 0 {
		n += protowire.SizeTag(1) + protowire.SizeBytes(len(r.Key))
	}
	if len(r.Value) > 0 {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(r.Value))
	}
	if r.TimeReceived != "" {
		n += protowire.SizeTag(5) + protowire.SizeBytes(len(r.TimeReceived))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	if len(r.Key) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, r.Key)
	}
	if len(r.Value) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, r.Value)
	}
	if r.TimeReceived != "" {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, r.TimeReceived)
	}
	return b
}

// unmarshalRecord decodes a record; nothing in it aliases b.
func unmarshalRecord(b []byte) (*Record, error) {
	r := &Record{}
	for len(b) > 0 {
		num, typ, v, _, n, err := pbwire.Next(b)
		if err != nil {
			return nil, fmt.Errorf("%w: record: %v", ErrBadMessage, err)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case 1:
			if len(v) > MaxKeySize {
				return nil, fmt.Errorf("%w: record key of %d bytes", ErrBadMessage, len(v))
			}
			r.Key = bytes.Clone(v)
		case 2:
			if len(v) > MaxValueSize {
				return nil, fmt.Errorf("%w: record value of %d bytes", ErrBadMessage, len(v))
			}
			r.Value = bytes.Clone(v)
		case 5:
			if len(v) > 64 {
				return nil, fmt.Errorf("%w: record time of %d bytes", ErrBadMessage, len(v))
			}
			r.TimeReceived = string(v)
		}
	}
	return r, nil
}
