//go:build race

package bench

// raceEnabled: the race detector slows the server ten times over, so the
// campaign test sends fewer inputs under it.
const raceEnabled = true
