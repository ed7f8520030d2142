package main

import (
	"fmt"
	"io"
)

// runProbe diagnoses a client URL. (The ports work fills this in.)
func runProbe(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "berth probe: not implemented yet")
	return exitFail
}
