package chunker

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"", DefaultSize, false},
		{"size-1048576", 1 << 20, false},
		{"size-262144", 262144, false},
		{"size-1", 1, false},
		{"size-4194304", MaxSize, false},
		{"size-4194305", 0, true},
		{"size-0", 0, true},
		{"size--5", 0, true},
		{"size-+5", 0, true},
		{"size-", 0, true},
		{"size-1k", 0, true},
		{"size 10", 0, true},
		{"rabin", 0, true},
		{"size-99999999999999999999999", 0, true},
	}
	for _, tt := range tests {
		sp, err := Parse(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrBadSpec) {
				t.Errorf("Parse(%q) err = %v, want ErrBadSpec", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if sp.MaxChunk() != tt.want {
			t.Errorf("Parse(%q).MaxChunk() = %d, want %d", tt.in, sp.MaxChunk(), tt.want)
		}
		if back, err := Parse(sp.String()); err != nil || back != sp {
			t.Errorf("Parse(%q).String() = %q does not round-trip", tt.in, sp.String())
		}
	}
	if d, _ := Parse("size-1048576"); d != (Spec{}) || Default() != (Spec{}) {
		t.Errorf("the default spec is not the zero Spec")
	}
	if (Spec{}).String() != "size-1048576" {
		t.Errorf("zero Spec = %q", Spec{}.String())
	}
}

func TestFixed(t *testing.T) {
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	tests := []struct {
		size, n int
		want    []int
	}{
		{100, 0, nil},
		{100, 1, []int{1}},
		{100, 100, []int{100}},
		{100, 101, []int{100, 1}},
		{1000, 10000, []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}},
		{4096, 10000, []int{4096, 4096, 1808}},
	}
	for _, tt := range tests {
		sp, err := FixedSize(tt.size)
		if err != nil {
			t.Fatal(err)
		}
		// OneByteReader checks that short reads still give full chunks.
		ch := sp.New(iotest.OneByteReader(bytes.NewReader(data[:tt.n])))
		var got []int
		var joined []byte
		buf := make([]byte, 0, 10) // too small: Next must grow it
		for {
			c, err := ch.Next(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, len(c))
			joined = append(joined, c...)
			buf = c[:0]
		}
		if len(got) != len(tt.want) {
			t.Fatalf("size %d n %d: chunks %v, want %v", tt.size, tt.n, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("size %d n %d: chunks %v, want %v", tt.size, tt.n, got, tt.want)
			}
		}
		if !bytes.Equal(joined, data[:tt.n]) {
			t.Errorf("size %d n %d: chunks do not join to the input", tt.size, tt.n)
		}
		if _, err := ch.Next(buf); err != io.EOF {
			t.Errorf("Next after EOF = %v, want io.EOF", err)
		}
	}
}

func TestFixedReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(make([]byte, 150)), iotest.ErrReader(boom))
	ch := Spec{size: 100}.New(r)
	if _, err := ch.Next(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Next(nil); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

// loopReader is an endless stream that copies from an in-memory source,
// as reading a cached file would, so the benchmark measures the chunker and
// the copy rather than a disk.
type loopReader struct {
	src []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.src[l.off:])
	l.off = (l.off + n) % len(l.src)
	return n, nil
}

func BenchmarkFixed(b *testing.B) {
	for _, size := range []int{256 << 10, 1 << 20} {
		b.Run(Spec{size: size}.String(), func(b *testing.B) {
			ch := Spec{size: size}.New(&loopReader{src: make([]byte, 3<<20+17)})
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ch.Next(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
