// Package cputime reads the CPU time this process has used, for the load
// figures the API (getThreadsLoad) and the cluster's heartbeat report.
package cputime
