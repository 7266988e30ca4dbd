//go:build !race

package oxdserver

// raceEnabled: allocation counts are not exact under the race detector.
const raceEnabled = false
