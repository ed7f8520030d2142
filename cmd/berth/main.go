// Command berth is a streaming media server: RTSP, RTMP, HTTP-FLV and RTP
// ingest into one hub, readable in every protocol, and loud about its ports.
//
//	berth [-c config.ini] [flags]   serve
//	berth doctor [-c FILE] [--json] check every configured port without serving
//	berth probe URL                 tell why a client cannot reach a stream
//	berth bench ...                 load-test a server
//	berth version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/server"
)

// Exit codes, documented in the README.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
	exitPorts  = ports.ExitPortFindings
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "doctor":
			return runDoctor(args[1:], stdout, stderr)
		case "probe":
			return runProbe(args[1:], stdout, stderr)
		case "bench":
			return runBench(args[1:], stdout, stderr)
		case "version":
			fmt.Fprintln(stdout, "berth", server.Version)
			return exitOK
		case "serve":
			args = args[1:]
		}
	}
	return serve(args, stdout, stderr)
}

// loadConfig parses -c and the key flags shared by serve and doctor.
func loadConfig(fs *flag.FlagSet, args []string, stderr io.Writer) (*config.Config, int) {
	file := fs.String("c", "", "config file in ZLMediaKit's ini form (default: embedded defaults)")
	overrides := map[string]*string{}
	bools := map[string]*bool{}
	flags := config.Flags()
	for _, f := range flags {
		if f.Bool {
			bools[f.Name] = fs.Bool(f.Name, f.Default == "1", f.Help)
		} else {
			overrides[f.Name] = fs.String(f.Name, f.Default, f.Help)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "berth: unexpected argument %q; see berth --help\n", fs.Arg(0))
		return nil, exitConfig
	}
	cfg := config.Default()
	if *file != "" {
		var err error
		if cfg, err = config.LoadFile(*file); err != nil {
			fmt.Fprintf(stderr, "berth: %v\n", err)
			return nil, exitConfig
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range flags {
		if !set[f.Name] {
			continue
		}
		v := ""
		if f.Bool {
			v = "0"
			if *bools[f.Name] {
				v = "1"
			}
		} else {
			v = *overrides[f.Name]
		}
		if err := f.Apply(cfg, v); err != nil {
			fmt.Fprintf(stderr, "berth: %v\n", err)
			return nil, exitConfig
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return nil, exitConfig
	}
	return cfg, -1
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("berth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	printConfig := fs.Bool("print-config", false, "print the full default config, every key commented, and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: berth [-c config.ini] [flags]
       berth doctor [-c config.ini] [--json]   check ports without serving
       berth probe URL                         diagnose a client's URL (rtsp://, rtmp://, http://)
       berth bench play|push|latency ...       load-test a server
       berth version

Exit codes: 0 ok, 1 runtime failure, 2 bad config or flags, 3 a port cannot be used.

Flags (each overrides a config key):
`)
		fs.PrintDefaults()
	}
	cfg, code := loadConfig(fs, args, stderr)
	if code >= 0 {
		return code
	}
	if *printConfig {
		config.WriteDefault(stdout)
		return exitOK
	}
	level, _ := logging.ParseLevel(cfg.Log.Level)
	log := logging.New(stderr, level)
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w)
	}

	srv := server.New(cfg, log)
	srv.Banner = stderr
	if err := srv.Start(); err != nil {
		var se *ports.StartError
		if errors.As(err, &se) {
			for _, f := range se.Findings {
				f.ConfigFile = cfg.Source
				fmt.Fprintln(stderr, f.Error())
			}
			fmt.Fprintf(stderr, "berth: not started: %d listener(s) cannot be used (exit code %d); `berth doctor` shows every port\n", len(se.Findings), exitPorts)
			return exitPorts
		}
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return exitFail
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	log.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown did not finish in time", "err", err)
	}
	log.Info("stopped")
	return exitOK
}
