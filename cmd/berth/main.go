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
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berthmedia/berth/internal/certs"
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
		case "cluster":
			return runCluster(args[1:], stdout, stderr)
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
	cfg, _, code := loadConfigReloadable(fs, args, stderr)
	return cfg, code
}

// configSource remembers where the config came from, -c and the flags set
// on the command line, so SIGHUP can read the file again and put the same
// flags on top.
type configSource struct {
	file  string
	flags []config.Flag
	set   map[string]string // flag name -> value given
}

// load reads the file (or the defaults) and applies the flags.
func (cs *configSource) load() (*config.Config, error) {
	cfg := config.Default()
	if cs.file != "" {
		var err error
		if cfg, err = config.LoadFile(cs.file); err != nil {
			return nil, err
		}
	}
	for _, f := range cs.flags {
		if v, ok := cs.set[f.Name]; ok {
			if err := f.Apply(cfg, v); err != nil {
				return nil, err
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadConfigReloadable is loadConfig that also returns how to load again.
func loadConfigReloadable(fs *flag.FlagSet, args []string, stderr io.Writer) (*config.Config, *configSource, int) {
	file := fs.String("c", "", "config file in ZLMediaKit's ini form (default: embedded defaults); SIGHUP reads it again")
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
			return nil, nil, exitOK
		}
		return nil, nil, exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "berth: unexpected argument %q; see berth --help\n", fs.Arg(0))
		return nil, nil, exitConfig
	}
	cs := &configSource{file: *file, flags: flags, set: map[string]string{}}
	fs.Visit(func(fl *flag.Flag) {
		if b, ok := bools[fl.Name]; ok {
			cs.set[fl.Name] = map[bool]string{true: "1", false: "0"}[*b]
		} else if o, ok := overrides[fl.Name]; ok {
			cs.set[fl.Name] = *o
		}
	})
	cfg, err := cs.load()
	if err != nil {
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return nil, nil, exitConfig
	}
	return cfg, cs, -1
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("berth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	printConfig := fs.Bool("print-config", false, "print the full default config, every key commented, and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: berth [-c config.ini] [flags]
       berth doctor [-c config.ini] [--json]   check ports without serving
       berth probe URL                         diagnose a client's URL (rtsp://, rtmp://, http://)
       berth bench play|push|latency|chaos ... load-test a server (chaos: bad input)
       berth cluster status [-c config.ini | -redis URL]   the cluster's nodes and streams
       berth version

Exit codes: 0 ok, 1 runtime failure, 2 bad config or flags, 3 a port cannot be used.

Flags (each overrides a config key):
`)
		fs.PrintDefaults()
	}
	cfg, source, code := loadConfigReloadable(fs, args, stderr)
	if code >= 0 {
		return code
	}
	if *printConfig {
		config.WriteDefault(stdout)
		return exitOK
	}
	level := logging.NewLevel(cfg.Log.Level)
	log := logging.New(stderr, level)
	cfg.LogNotes(log)

	// Signals are caught before Start: a SIGHUP while the listeners bind
	// and probe must reload later, not end the process (its default).
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)

	srv := server.New(cfg, log)
	srv.Level = level // [log] level reloads live
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
		var ce *certs.Error
		if errors.As(err, &ce) { // a TLS listener's certificate: a config problem
			fmt.Fprintf(stderr, "berth: not started: %v\n", err)
			return exitConfig
		}
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return exitFail
	}

	s := <-sig
	for ; s == syscall.SIGHUP; s = <-sig {
		reload(srv, source, log, stderr)
	}
	log.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown did not finish in time", "err", err)
	}
	log.Info("stopped")
	return exitOK
}

// reload is SIGHUP: read -c again, put the command-line flags on top, and
// apply what changed. A file that does not load is reported and the running
// config stays; so does one whose new ports cannot be bound.
func reload(srv *server.Server, source *configSource, log *slog.Logger, stderr io.Writer) {
	what := "the embedded defaults and flags"
	if source.file != "" {
		what = source.file
	}
	log.Info("SIGHUP: reloading the config", "from", what)
	cfg, err := source.load()
	if err != nil {
		log.Error("reload: the config does not load; the running config stays", "err", err.Error())
		return
	}
	cfg.LogNotes(log)
	if _, err := srv.Reload(cfg); err != nil {
		var se *ports.StartError
		if errors.As(err, &se) {
			for _, f := range se.Findings {
				f.ConfigFile = cfg.Source
				fmt.Fprintln(stderr, f.Error())
			}
			log.Error(fmt.Sprintf("reload: %d listener(s) cannot be used; nothing changed, the running config stays", len(se.Findings)))
			return
		}
		log.Error("reload: nothing changed, the running config stays", "err", err.Error())
	}
}
