package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/berthmedia/berth/internal/doctor"
	"github.com/berthmedia/berth/internal/server"
)

// runDoctor checks every configured listener without serving: the same
// preflight as a start (internal/ports), plus host checks. It parses the
// same flags as serve, so `berth doctor -c x.ini --rtsp-port 554` checks
// exactly what `berth -c x.ini --rtsp-port 554` would bind.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("berth doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: berth doctor [-c config.ini] [--json] [flags]

Checks every configured listener without serving: binds and releases each one,
names who holds a taken port, finds sockets that would shadow Berth, other
media servers on this host, privileged ports and firewall rules.

Exit codes: 0 all well, 3 a listener cannot be bound (as a start would fail),
1 other problems (shadows, firewall), 2 bad config or flags (or a TLS
certificate a start would refuse).

Flags (the same as berth's):
`)
		fs.PrintDefaults()
	}
	cfg, code := loadConfig(fs, args, stderr)
	if code >= 0 {
		return code
	}
	// The certificate first: a start would refuse it before binding anything.
	if warn, err := server.CheckCert(cfg); err != nil {
		fmt.Fprintf(stderr, "berth doctor: %v\n", err)
		return exitConfig
	} else if warn != "" {
		fmt.Fprintf(stderr, "berth doctor: warning: tls: %s\n", warn)
	}
	r := doctor.Run(server.Specs(cfg), doctor.Options{ConfigFile: cfg.Source})
	if *asJSON {
		if err := r.WriteJSON(stdout); err != nil {
			fmt.Fprintf(stderr, "berth doctor: %v\n", err)
			return exitFail
		}
	} else {
		r.WriteTable(stdout)
	}
	return r.ExitCode()
}
