//go:build !unix

package cputime

import (
	"runtime/metrics"
	"time"
)

// Process is the CPU time the Go runtime estimates it used (where the
// OS's process accounting is not read): available CPU time less idle.
func Process() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 || s[1].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration((s[0].Value.Float64() - s[1].Value.Float64()) * float64(time.Second))
}
