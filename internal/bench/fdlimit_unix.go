//go:build unix

package bench

import "syscall"

// fdLimit is how many files this process may have open. Go raises the soft
// RLIMIT_NOFILE to the hard limit at start (since Go 1.19), so this is the
// hard limit unless the hard limit itself is low: raise it with `ulimit -Hn`
// (as root) or LimitNOFILE= in a systemd unit.
func fdLimit() (soft, hard uint64) {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0, 0
	}
	return uint64(r.Cur), uint64(r.Max)
}
