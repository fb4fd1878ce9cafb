//go:build !race

package datanode

// raceDetector is whether the race detector is on: it slows copies enough that bounds on
// scheduling delays need more room.
const raceDetector = false
