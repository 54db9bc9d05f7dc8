//go:build !race

package envelope

// raceEnabled is set when the tests run under the race detector.
const raceEnabled = false
