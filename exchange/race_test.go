//go:build race

package exchange

// raceEnabled says the race detector slows the tests down, so throughput
// is logged rather than checked.
const raceEnabled = true
