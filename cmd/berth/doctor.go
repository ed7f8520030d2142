package main

import (
	"fmt"
	"io"
)

// runDoctor checks every configured listener without serving. (The ports work fills this in.)
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "berth doctor: not implemented yet")
	return exitFail
}
