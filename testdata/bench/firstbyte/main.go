// Command firstbyte runs a command and reports when its first and last
// bytes of output arrived and when it exited, relative to its start.
// Used by firstbyte.sh; run by hand.
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: firstbyte CMD [ARG...]")
		os.Exit(2)
	}
	t0 := time.Now()
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "firstbyte:", err)
		os.Exit(1)
	}
	buf := make([]byte, 1<<20)
	var n int64
	var first, last time.Time
	for {
		m, err := out.Read(buf)
		if m > 0 {
			if n == 0 {
				first = time.Now()
			}
			n += int64(m)
			last = time.Now()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "firstbyte:", err)
			os.Exit(1)
		}
	}
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "firstbyte:", err)
		os.Exit(1)
	}
	ms := func(t time.Time) float64 { return float64(t.Sub(t0).Microseconds()) / 1000 }
	fmt.Printf("bytes %d  first %.0f ms  last %.0f ms  exit %.0f ms\n", n, ms(first), ms(last), ms(time.Now()))
}
