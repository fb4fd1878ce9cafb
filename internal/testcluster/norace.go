//go:build !race

package testcluster

// raceEnabled reports whether the test binary runs with the race detector.
const raceEnabled = false
