//go:build !unix

package oxd

import "time"

// processCPU is not measured here: the cpu-ns/op figure reads 0.
func processCPU() time.Duration { return 0 }
