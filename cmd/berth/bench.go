package main

import (
	"fmt"
	"io"
)

// runBench is the load tool. (The bench work fills this in.)
func runBench(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "berth bench: not implemented yet")
	return exitFail
}
