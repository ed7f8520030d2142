package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestClusterStatusCommand: berth cluster status reads the registry a
// running node registered in, given -redis or a config's [cluster] redis,
// and says what to pass when it has neither.
func TestClusterStatusCommand(t *testing.T) {
	redis := testutil.StartRedis(t)
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.SRT.Port, cfg.RTC.Port = 0, 0
	cfg.Cluster.Redis, cfg.Cluster.NodeID = redis.URL(), "edge-7"
	srv := server.New(cfg, logging.New(&testutil.LogBuffer{}, logging.LevelTrace))
	srv.Ephemeral = true
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	dir := t.TempDir()
	withRedis := filepath.Join(dir, "c.ini")
	os.WriteFile(withRedis, []byte("[cluster]\nredis="+redis.URL()+"\n"), 0o644)
	alone := filepath.Join(dir, "alone.ini")
	os.WriteFile(alone, []byte("[rtsp]\nport=8554\n"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"-redis", []string{"cluster", "status", "-redis", redis.URL()}, 0, "edge-7"},
		{"-c", []string{"cluster", "status", "-c", withRedis}, 0, "1 node(s), 0 stream(s)"},
		{"-json", []string{"cluster", "status", "-redis", redis.URL(), "-json"}, 0, `"node_id": "edge-7"`},
		{"no registry named", []string{"cluster", "status"}, 2, "pass -redis redis://HOST:6379"},
		{"config without [cluster]", []string{"cluster", "status", "-c", alone}, 2, "has no [cluster] redis"},
		{"registry down", []string{"cluster", "status", "-redis", "redis://127.0.0.1:1"}, 1, "cannot read the registry at redis://127.0.0.1:1"},
		{"no verb", []string{"cluster"}, 2, "Usage: berth cluster status"},
	} {
		var out bytes.Buffer
		code := run(c.args, &out, &out)
		if code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, code, c.code, c.want, out.String())
		}
	}
}
