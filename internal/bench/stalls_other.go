//go:build !linux

package bench

import "time"

func pinThread(int) {}

func napThread(d time.Duration) { time.Sleep(d) }

func machineCPUs() []int { return nil }
