//go:build unix

package server

import "syscall"

// execSelf replaces the process image. Go opens every descriptor
// close-on-exec, so the new Berth inherits none of the old sockets.
func execSelf(exe string, args, env []string) error { return syscall.Exec(exe, args, env) }
