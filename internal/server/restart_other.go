//go:build !unix

package server

// execSelf is never reached on Windows (RestartServer refuses first).
func execSelf(exe string, args, env []string) error { return ErrRestartUnsupported }
