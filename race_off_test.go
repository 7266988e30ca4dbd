//go:build !race

package oxd

const raceEnabled = false
