package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/berthmedia/berth/internal/probe"
)

// runProbe diagnoses a client URL: resolution, connect, who answers, and
// whether the stream exists. Exit 0 only when the stream is playable.
func runProbe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("berth probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "limit for each step (resolve, connect, each request)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: berth probe [--timeout 3s] URL

Tells why a client cannot play URL (rtsp://, rtmp://, http://, https://):
name resolution, TCP connect, what answers (Berth, another server, or
something that does not speak the protocol), and whether the stream exists.
When a Berth runs on this host on another port, prints the URL that works.

Exit codes: 0 the stream is playable, 1 it is not (the output says why), 2 usage.
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return probe.ExitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return probe.ExitUsage
	}
	return probe.Run(context.Background(), fs.Arg(0), stdout, probe.Options{StepTimeout: *timeout})
}
