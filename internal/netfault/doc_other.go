//go:build !linux

// Package netfault is test support for network faults in namespaces: it
// works on Linux only; elsewhere Require skips.
package netfault

import "testing"

// Require skips: network namespaces are Linux's.
func Require(t testing.TB) { t.Helper(); t.Skip("network namespaces are Linux only") }
