package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/berthmedia/berth/internal/config"
)

// Server implements api.Configurer (CONTRACTS.md): ZLMediaKit's
// getServerConfig, setServerConfig and restartServer.
// LEAD: wire it as api.Handler{..., Config: s}.

// ServerConfig returns every key Berth has, "section.key" -> value, with
// ZLMediaKit's names (getServerConfig).
func (s *Server) ServerConfig() map[string]string {
	return s.CurrentConfig().Values()
}

// ErrUnknownKeys is returned by SetServerConfig for keys neither Berth nor
// ZLMediaKit has; nothing is changed then.
var ErrUnknownKeys = errors.New("unknown config keys")

// SetServerConfig sets keys ("section.key" -> value), validated first (a
// bad value changes nothing), applied through Reload (live where it can,
// the report names the rest), then written to the config file with its
// comments kept. changed counts keys whose value differs. ZLMediaKit keys
// Berth does not use are ignored with a log line, as ZLMediaKit ignores keys
// it does not have; keys nobody has are an error. With no config file
// (embedded defaults) the change applies but is not persisted, and the log
// says so.
func (s *Server) SetServerConfig(kv map[string]string) (changed int, err error) {
	s.live.setMu.Lock()
	defer s.live.setMu.Unlock()
	cur := s.CurrentConfig()
	next := cur.Clone()
	names := make([]string, 0, len(kv))
	for k := range kv {
		names = append(names, k)
	}
	sort.Strings(names)
	var unknown, ignored []string
	write := map[string]string{}
	for _, name := range names {
		canon, ok := config.CanonicalKey(name)
		if !ok {
			section, key, _ := strings.Cut(name, ".")
			if config.IsZLMediaKitKey(section, key) {
				ignored = append(ignored, name)
			} else {
				unknown = append(unknown, name)
			}
			continue
		}
		before := next.Values()[canon]
		if err := next.Set(canon, kv[name]); err != nil {
			return 0, err
		}
		if after := next.Values()[canon]; after != before {
			write[canon] = after
		}
	}
	if len(unknown) > 0 {
		return 0, fmt.Errorf("%w: %s: neither Berth nor ZLMediaKit has them (getServerConfig lists Berth's); nothing was changed",
			ErrUnknownKeys, strings.Join(unknown, ", "))
	}
	if len(ignored) > 0 {
		s.Log.Info("setServerConfig: ZLMediaKit keys Berth does not use (yet) were ignored", "keys", strings.Join(ignored, " "))
	}
	if len(write) == 0 {
		return 0, nil
	}
	if err := next.Validate(); err != nil {
		return 0, err
	}
	if _, err := s.Reload(next); err != nil {
		return 0, err
	}
	if cur.Source == "" {
		s.Log.Warn(fmt.Sprintf("setServerConfig: %d key(s) applied live but not saved: Berth runs on its embedded defaults, there is no config file to write", len(write)),
			"fix", "start Berth with -c config.ini (berth --print-config > config.ini writes one) to keep such changes")
		return len(write), nil
	}
	if err := config.SetKeys(cur.Source, write); err != nil {
		return len(write), fmt.Errorf("setServerConfig: applied live but not saved: %w", err)
	}
	s.Log.Info(fmt.Sprintf("setServerConfig: %d key(s) saved to %s", len(write), cur.Source))
	return len(write), nil
}

// ErrRestartUnsupported is RestartServer's answer where a process cannot
// replace itself.
var ErrRestartUnsupported = errors.New("restartServer is not supported on Windows: a process cannot replace itself there; restart the service or the console instead")

// RestartServer restarts Berth as ZLMediaKit does: it answers at once,
// then, after a short delay that lets the API reply go out, shuts down
// cleanly (listeners first, then sessions) and executes its own binary
// again with the same arguments and environment, in the same process
// (same pid, so a supervisor sees no exit). Flags and the -c file are read
// again, so the new process runs the saved config.
func (s *Server) RestartServer() error {
	if runtime.GOOS == "windows" {
		return ErrRestartUnsupported
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("restartServer: cannot find Berth's own executable: %w", err)
	}
	execFn, delay := s.live.restartExec, s.live.restartDelay
	if execFn == nil {
		execFn = execSelf
	}
	if delay == 0 {
		delay = time.Second
	}
	s.Log.Warn("restartServer: restarting", "in", delay.String(), "exe", exe, "args", strings.Join(os.Args[1:], " "))
	go func() {
		time.Sleep(delay) // let the API reply reach the caller, as ZLMediaKit does
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			s.Log.Warn("restartServer: shutdown did not finish in time; restarting anyway", "err", err)
		}
		cancel()
		if err := execFn(exe, os.Args, os.Environ()); err != nil {
			s.Log.Error("restartServer: cannot execute Berth again; it has stopped", "exe", exe, "err", err,
				"fix", "start it again by hand, or run it under a supervisor (systemd Restart=always)")
			if s.live.restartExec == nil {
				os.Exit(1)
			}
		}
	}()
	return nil
}
