package relay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
)

// The relay's cost with 100 reserved clients and 20 active circuits,
// measured on a relay in a process of its own (this test binary, run
// again): its RSS idle and after carrying data, and its CPU time per GiB
// relayed. SHARE_RELAY_MEASURE=1 runs it (SHARE_RELAY_MEASURE_MIB: MiB
// per circuit, default 32).
func TestRelayMeasure(t *testing.T) {
	if os.Getenv("SHARE_RELAY_MEASURE") != "1" {
		t.Skip("SHARE_RELAY_MEASURE=1 measures")
	}
	mib := 32
	if s := os.Getenv("SHARE_RELAY_MEASURE_MIB"); s != "" {
		mib, _ = strconv.Atoi(s)
	}
	pid, relayAI := startRelayProcess(t)
	base := procStats(t, pid)

	const clients, circuits = 100, 20
	targets := make([]node, clients)
	for i := range targets {
		targets[i] = newNode(t, nil)
		c := NewClient(targets[i].Host, nil)
		if err := targets[i].Connect(testCtx(t), relayAI); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Reserve(testCtx(t), relayAI.ID); err != nil {
			t.Fatalf("reservation %d: %v", i, err)
		}
		targets[i].SetHandler(sinkProto, sink)
	}
	reserved := procStats(t, pid)
	dialers := make([]node, circuits)
	via := relayCircuit(relayAI.Addrs[0], relayAI.ID)
	for i := range dialers {
		dialers[i] = newNode(t, nil)
		NewClient(dialers[i].Host, nil)
		if err := dialers[i].Connect(testCtx(t), peer.AddrInfo{ID: targets[i].ID(), Addrs: []ma.Multiaddr{via}}); err != nil {
			t.Fatal(err)
		}
	}
	open := procStats(t, pid)

	start := time.Now()
	var wg sync.WaitGroup
	for i := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := send(dialers[i].Host, targets[i].ID(), mib<<20); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	after := procStats(t, pid)
	total := float64(circuits*mib) / 1024 // GiB
	t.Logf("relay RSS: %.1f MiB at start, %.1f MiB with %d reservations, %.1f MiB with %d circuits open, %.1f MiB after carrying %.2f GiB",
		base.rssMiB, reserved.rssMiB, clients, open.rssMiB, circuits, after.rssMiB, total)
	t.Logf("relay CPU: %.2f s for %.2f GiB (%.2f s/GiB) in %.2f s wall: %.0f Mbit/s through the relay; %.2f s to take %d reservations and open %d circuits",
		after.cpu-open.cpu, total, (after.cpu-open.cpu)/total, wall.Seconds(), total*8*1024*1024*1024/1e6/wall.Seconds(),
		open.cpu-base.cpu, clients, circuits)
}

const sinkProto = "/test/sink/1.0.0"

// sink reads a stream to its end and answers one byte.
func sink(s *p2p.Stream) {
	s.SetDeadline(time.Now().Add(5 * time.Minute))
	io.Copy(io.Discard, s)
	s.Write([]byte{1})
	s.Close()
}

// send writes n bytes to peer's sink and waits for its answer.
func send(h *p2p.Host, to peer.ID, n int) error {
	s, err := h.NewStream(context.Background(), to, sinkProto)
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(5 * time.Minute))
	buf := make([]byte, 256<<10)
	for sent := 0; sent < n; sent += len(buf) {
		if _, err := s.Write(buf); err != nil {
			return err
		}
	}
	s.CloseWrite()
	_, err = io.ReadFull(s, buf[:1])
	return err
}

// TestRelayProcess is the relay of TestRelayMeasure, in the child process.
func TestRelayProcess(t *testing.T) {
	if os.Getenv("SHARE_RELAY_CHILD") != "1" {
		t.Skip("the relay process of TestRelayMeasure")
	}
	r := newNode(t, nil)
	newService(t, r, Limits{Reservations: 1000, ReservationsPerIP: 1000, Circuits: 1000, CircuitsPerPeer: 1000})
	fmt.Printf("RELAY %s\n", r.AddrInfo().P2pAddrs()[0])
	io.Copy(io.Discard, os.Stdin) // until the parent is done
}

// startRelayProcess runs TestRelayProcess in a child and returns its pid
// and address.
func startRelayProcess(t *testing.T) (int, peer.AddrInfo) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRelayProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "SHARE_RELAY_CHILD=1")
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "RELAY "); ok {
			ai, err := peer.AddrInfoFromString(addr)
			if err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, out)
			return cmd.Process.Pid, ai
		}
	}
	t.Fatal("the relay process did not start")
	return 0, peer.AddrInfo{}
}

type procStat struct {
	rssMiB float64
	cpu    float64 // user + system seconds
}

// procStats reads a process's RSS and CPU time from /proc.
func procStats(t *testing.T, pid int) procStat {
	t.Helper()
	var st procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			st.rssMiB = float64(kb) / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	st.cpu = float64(utime+stime) / 100 // USER_HZ
	return st
}
