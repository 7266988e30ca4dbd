// Package testwait waits, in tests, for a state that other goroutines or
// processes reach in their own time, with the patience a loaded machine
// needs: the tests await what they check instead of sleeping.
package testwait

import "time"

// Patience is how long a wait lasts before the test fails.
const Patience = 10 * time.Second

// poll is how often the condition is checked.
const poll = 5 * time.Millisecond

// T is the part of testing.TB the waits use.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// For waits until cond reports done, and fails t after Patience with
// cond's last account of what it saw.
func For(t T, cond func() (done bool, saw string)) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for {
		done, saw := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after %v", saw, Patience)
		}
		time.Sleep(poll)
	}
}

// Until waits until cond holds, and fails t after Patience naming what it
// waited for.
func Until(t T, what string, cond func() bool) {
	t.Helper()
	For(t, func() (bool, string) { return cond(), "still waiting until " + what })
}
