package cluster

import (
	"testing"
	"time"
)

// FuzzRecordsFromRedis: the registry's hashes are written by other nodes
// (or by anyone with access to Redis); reading any field values must not
// panic, and a record's own fields read back the same.
func FuzzRecordsFromRedis(f *testing.F) {
	rec := &StreamRecord{Path: "live/cam", Node: "a", Instance: "i", RTSP: "rtsp://h:1/live/cam",
		Protocols: []string{"rtsp", "hls"}, Publisher: "rtmp", Started: time.UnixMilli(1700000000000)}
	f.Add(rec.Path, rec.Node, "rtsp,hls", "1700000000000", "12", "18446744073709551615")
	f.Add("", "", "", "", "", "")
	f.Add("a/b", "n", ",,,", "-1", "x", "-5")
	f.Fuzz(func(t *testing.T, path, node, protocols, started, cpu, egress string) {
		s := streamFrom(map[string]string{"path": path, "node": node, "protocols": protocols, "started": started})
		if s == nil || s.Path != path || s.Node != node {
			t.Fatalf("stream %+v", s)
		}
		s.PullURL()
		n := nodeFrom(map[string]string{"node": node, "cpu": cpu, "egress_bps": egress, "beat": started})
		if n == nil || n.ID != node {
			t.Fatalf("node %+v", n)
		}
		claimReply([]any{int64(0), node, started})
		claimReply([]any{path})
		claimReply(nil)
		// A record written by a node reads back the same.
		back := streamFrom(toMap(rec.fields()))
		if back.Path != rec.Path || !back.Started.Equal(rec.Started) || len(back.Protocols) != 2 || back.Publisher != rec.Publisher {
			t.Fatalf("round trip: %+v", back)
		}
	})
}

func toMap(kv []any) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = fmtAny(kv[i+1])
	}
	return m
}

func fmtAny(v any) string {
	switch x := v.(type) {
	case string:
		return x
	default:
		return ""
	}
}
