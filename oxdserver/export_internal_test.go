package oxdserver

// Bounds of the protection token checks, and how many callers wait for
// one, for the tests of package oxdserver_test.
const (
	ProtectionChecksInFlight = protectionChecksInFlight
	ProtectionChecksWaiting  = protectionChecksWaiting
	ProtectionChecksPerSetup = protectionChecksPerSetup
)

func ProtectionChecksWaitingNow(e *Engine) int { return int(e.protChecks.waiting.Load()) }
