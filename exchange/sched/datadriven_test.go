package sched

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata")

// A data-driven test file (in the style of Pebble's datadriven package) is
// a series of cases: a command line with arguments, optional input lines,
// a line "----", then the expected output up to a blank line. Lines that
// start with # between cases are comments.
//
//	deliver a b0
//	----
//	b0: stored
type testCase struct {
	pos   string   // file:line of the command
	cmd   string   // the command word
	args  []string // the rest of the command line
	input []string
	want  string
}

// runDataDriven runs every case of file through run, comparing its output
// with the expectation, or, with -rewrite, writing the outputs back.
func runDataDriven(t *testing.T, file string, run func(t *testing.T, c *testCase) string) {
	t.Helper()
	lines, err := readLines(file)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for i := 0; i < len(lines); {
		if l := lines[i]; strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			out.WriteString(l + "\n")
			i++
			continue
		}
		c, next := parseCase(t, file, lines, i)
		got := run(t, c)
		for _, l := range lines[i:next] {
			out.WriteString(l + "\n")
			if l == "----" {
				break
			}
		}
		if got != "" {
			out.WriteString(got + "\n")
		}
		if !*rewrite && got != c.want {
			t.Fatalf("%s: %s %s:\ngot:\n%s\nwant:\n%s", c.pos, c.cmd, strings.Join(c.args, " "), got, c.want)
		}
		i = next
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// parseCase reads the case that starts at lines[i] and returns the index
// of the line after its expected output.
func parseCase(t *testing.T, file string, lines []string, i int) (*testCase, int) {
	t.Helper()
	f := strings.Fields(lines[i])
	c := &testCase{pos: fmt.Sprintf("%s:%d", filepath.Base(file), i+1), cmd: f[0], args: f[1:]}
	j := i + 1
	for ; j < len(lines) && lines[j] != "----"; j++ {
		c.input = append(c.input, lines[j])
	}
	if j == len(lines) {
		t.Fatalf("%s: no ---- after the command", c.pos)
	}
	j++
	var want []string
	for ; j < len(lines) && strings.TrimSpace(lines[j]) != ""; j++ {
		want = append(want, lines[j])
	}
	c.want = strings.Join(want, "\n")
	return c, j
}

func readLines(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}
