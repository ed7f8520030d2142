package server_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testutil"
)

// startServer starts Berth on cfg with ephemeral ports, logging at level
// into the returned buffer; the server is shut down at the test's end and
// its log printed if the test failed. A *slog.LevelVar level is the
// server's Level, which a reload of [log] level changes (as the CLI's).
func startServer(t *testing.T, cfg *config.Config, level slog.Leveler) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	logs := &testutil.LogBuffer{}
	srv := server.New(cfg, logging.New(logs, level))
	if lv, ok := level.(*slog.LevelVar); ok {
		srv.Level = lv
	}
	srv.Ephemeral = true
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return srv, logs
}
