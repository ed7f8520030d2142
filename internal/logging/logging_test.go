package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLevelChangesLive: a logger built on NewLevel follows the variable,
// loggers derived with With included, and TRACE prints as TRACE.
func TestLevelChangesLive(t *testing.T) {
	var b bytes.Buffer
	lv := NewLevel("info")
	log := New(&b, lv)
	child := log.With("proto", "rtsp")
	child.Debug("hidden")
	lv.Set(LevelTrace)
	child.Debug("shown")
	Trace(child, "traced")
	out := b.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, "msg=shown") || !strings.Contains(out, "level=TRACE msg=traced") {
		t.Errorf("log:\n%s", out)
	}
	if NewLevel("nonsense").Level() != slog.LevelInfo || NewLevel("warn").Level() != slog.LevelWarn {
		t.Error("NewLevel of a config word")
	}
}
