//go:build !unix

package oxd

import "time"

func processCPUTime() (time.Duration, bool) { return 0, false }
