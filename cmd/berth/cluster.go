package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/berthmedia/berth/internal/cluster"
	"github.com/berthmedia/berth/internal/config"
)

// runCluster is `berth cluster status`: the registry as Redis holds it,
// read directly (no node needs to answer): every node with its load, every
// stream and the node it lives on.
func runCluster(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("berth cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file whose [cluster] redis names the registry")
	redisURL := fs.String("redis", "", "the registry's URL, redis://HOST:6379 (overrides -c)")
	asJSON := fs.Bool("json", false, "print getClusterInfo's JSON instead of tables")
	timeout := fs.Duration("timeout", 3*time.Second, "limit for reading the registry")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: berth cluster status [-c config.ini | -redis redis://HOST:6379] [-json]

Prints the cluster's nodes (load, heartbeat, uptime) and its streams with the
node each lives on, read from the Redis registry the nodes share.

Exit codes: 0 ok, 1 the registry cannot be read, 2 usage.
`)
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "status" {
		fs.Usage()
		return exitConfig
	}
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitConfig
	}
	url := *redisURL
	if url == "" && *file != "" {
		cfg, err := config.LoadFile(*file)
		if err != nil {
			fmt.Fprintf(stderr, "berth: %v\n", err)
			return exitConfig
		}
		url = cfg.Cluster.Redis
		if url == "" {
			fmt.Fprintf(stderr, "berth: %s has no [cluster] redis: this node is not in a cluster; pass -redis redis://HOST:6379\n", *file)
			return exitConfig
		}
	}
	if url == "" {
		fmt.Fprintln(stderr, "berth cluster status: which registry? pass -redis redis://HOST:6379 or -c a config with [cluster] redis")
		return exitConfig
	}
	if err := config.CheckRedisURL(url); err != nil {
		fmt.Fprintf(stderr, "berth: -redis: %v\n", err)
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := cluster.ReadStatus(ctx, url)
	if err != nil {
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return exitFail
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return exitOK
	}
	st.WriteText(stdout)
	return exitOK
}
