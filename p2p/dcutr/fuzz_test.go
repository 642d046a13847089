package dcutr

import "testing"

// FuzzUnmarshal: any bytes decode to a bounded message or an error, and
// what decodes encodes back to something that decodes the same.
func FuzzUnmarshal(f *testing.F) {
	f.Add((&Msg{Type: Sync}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			return
		}
		if len(m.Addrs) > MaxAddrs {
			t.Fatalf("%d addresses kept", len(m.Addrs))
		}
		again, err := Unmarshal(m.Marshal())
		if err != nil || again.Type != m.Type || len(again.Addrs) != len(m.Addrs) {
			t.Fatalf("re-decode: %v %+v, want %+v", err, again, m)
		}
	})
}
