//go:build race

package oxd

// raceEnabled: the race detector slows the flood tests about tenfold.
const raceEnabled = true
