package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/berthmedia/berth/internal/auth"
)

func newTestNode(t *testing.T, mr *miniredis.Miniredis, id string, log *bytes.Buffer) *Node {
	t.Helper()
	var l *slog.Logger
	if log != nil {
		l = slog.New(slog.NewTextHandler(log, nil))
	}
	n, err := New(Options{Redis: "redis://" + mr.Addr(), NodeID: id, TTL: time.Second, Log: l,
		Advertise: Advertise{RTSP: "rtsp://10.0.0." + id + ":8554", RTMP: "rtmp://10.0.0." + id + ":1935"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(time.Second) })
	return n
}

// TestClaimIsExclusiveAndReleaseOnlyByTheOwner: the registry's claim and
// release, as the nodes use them for a path.
func TestClaimIsExclusiveAndReleaseOnlyByTheOwner(t *testing.T) {
	mr := miniredis.RunT(t)
	a, b := newTestNode(t, mr, "1", nil), newTestNode(t, mr, "2", nil)
	ctx := context.Background()
	claim := func(n *Node, path string) *Owner {
		rec := &StreamRecord{Path: path, Node: n.ID(), Instance: n.instance, RTSP: n.opts.Advertise.RTSP + "/" + path, Started: time.Now()}
		v, err := claimScript.Run(ctx, n.rdb, []string{streamKey(path)}, claimArgs(n.instance, time.Second, rec.fields())...).Result()
		if err != nil {
			t.Fatal(err)
		}
		o, err := claimReply(v)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, step := range []struct {
		name  string
		do    func() any
		check func(any) bool
	}{
		{"a claims live/cam", func() any { return claim(a, "live/cam") }, func(v any) bool { return v.(*Owner) == nil }},
		{"a claims it again (a heartbeat)", func() any { return claim(a, "live/cam") }, func(v any) bool { return v.(*Owner) == nil }},
		{"b is told a has it", func() any { return claim(b, "live/cam") }, func(v any) bool { o := v.(*Owner); return o != nil && o.Node == "1" }},
		{"b's release leaves it", func() any {
			releaseScript.Run(ctx, b.rdb, []string{streamKey("live/cam")}, b.instance)
			r, _ := lookup(ctx, b.rdb, "live/cam")
			return r
		}, func(v any) bool {
			r := v.(*StreamRecord)
			return r != nil && r.Node == "1" && r.PullURL() == "rtsp://10.0.0.1:8554/live/cam"
		}},
		{"a's release removes it", func() any {
			releaseScript.Run(ctx, a.rdb, []string{streamKey("live/cam")}, a.instance)
			r, _ := lookup(ctx, b.rdb, "live/cam")
			return r
		}, func(v any) bool { return v.(*StreamRecord) == nil }},
		{"b claims it now", func() any { return claim(b, "live/cam") }, func(v any) bool { return v.(*Owner) == nil }},
		{"it expires after the TTL", func() any {
			mr.FastForward(1100 * time.Millisecond)
			r, _ := lookup(ctx, a.rdb, "live/cam")
			return r
		}, func(v any) bool { return v.(*StreamRecord) == nil }},
	} {
		if v := step.do(); !step.check(v) {
			t.Fatalf("%s: got %+v", step.name, v)
		}
	}
}

// TestSnapshotListsNodesAndStreams: what berth cluster status reads.
func TestSnapshotListsNodesAndStreams(t *testing.T) {
	mr := miniredis.RunT(t)
	a := newTestNode(t, mr, "1", nil)
	if err := a.Claim(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := &StreamRecord{Path: "live/cam", Node: "1", Instance: a.instance, RTSP: "rtsp://10.0.0.1:8554/live/cam",
		Protocols: []string{"rtsp", "rtmp"}, Publisher: "rtmp", Started: time.UnixMilli(1700000000000)}
	claimScript.Run(context.Background(), a.rdb, []string{streamKey(rec.Path)}, claimArgs(a.instance, time.Second, rec.fields())...)
	st, err := ReadStatus(context.Background(), "redis://"+mr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 1 || st.Nodes[0].ID != "1" || st.Nodes[0].RTSP != "rtsp://10.0.0.1:8554" {
		t.Errorf("nodes: %+v", st.Nodes)
	}
	if len(st.Streams) != 1 || st.Streams[0].Publisher != "rtmp" || !st.Streams[0].Started.Equal(rec.Started) ||
		strings.Join(st.Streams[0].Protocols, ",") != "rtsp,rtmp" {
		t.Errorf("streams: %+v", st.Streams)
	}
	var out bytes.Buffer
	st.WriteText(&out)
	for _, want := range []string{"1 node(s), 1 stream(s)", "live/cam", "rtsp://10.0.0.1:8554/live/cam"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, out.String())
		}
	}
}

// TestNodeIDLiveRefusesAfterOneTTL: a node_id whose holder keeps beating
// is refused (after waiting one TTL for a crashed holder's entry to go),
// naming where it is live; one whose holder stopped is taken.
func TestNodeIDLiveRefusesAfterOneTTL(t *testing.T) {
	mr := miniredis.RunT(t)
	a := newTestNode(t, mr, "1", nil)
	if err := a.Claim(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.Run() // it beats every ttl/3
	dup := newTestNode(t, mr, "1", nil)
	err := dup.Claim(context.Background())
	var live *NodeIDLiveError
	if !errors.As(err, &live) || !errors.Is(err, ErrNodeIDLive) || !strings.Contains(err.Error(), "rtsp://10.0.0.1:8554") {
		t.Fatalf("duplicate node_id: %v", err)
	}
	a.Close(time.Second) // removes its entry
	if err := dup.Claim(context.Background()); err != nil {
		t.Errorf("node_id free again: %v", err)
	}
}

// TestPublishGate: a publish of a path another node has is refused with
// its name and the fix; a play passes; Redis down lets the publish through
// and says so once.
func TestPublishGate(t *testing.T) {
	mr := miniredis.RunT(t)
	var logs bytes.Buffer
	a, b := newTestNode(t, mr, "1", nil), newTestNode(t, mr, "2", &logs)
	rec := &StreamRecord{Path: "live/cam", Node: "1", Instance: a.instance, RTSP: "rtsp://10.0.0.1:8554/live/cam", Started: time.Now()}
	claimScript.Run(context.Background(), a.rdb, []string{streamKey(rec.Path)}, claimArgs(a.instance, time.Minute, rec.fields())...)
	for _, c := range []struct {
		name string
		req  auth.Request
		want string // "" = allowed
	}{
		{"publish of a's path", auth.Request{Action: auth.Publish, App: "live", Stream: "cam"}, `already live on node "1" (rtsp://10.0.0.1:8554/live/cam`},
		{"play of a's path", auth.Request{Action: auth.Play, App: "live", Stream: "cam"}, ""},
		{"publish of a free path", auth.Request{Action: auth.Publish, App: "live", Stream: "other"}, ""},
	} {
		err := b.Authorize(context.Background(), c.req)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if err := a.Authorize(context.Background(), auth.Request{Action: auth.Publish, App: "live", Stream: "cam"}); err != nil {
		t.Errorf("the owner's own publish refused: %v", err)
	}
	mr.Close()
	for range 3 {
		if err := b.Authorize(context.Background(), auth.Request{Action: auth.Publish, App: "live", Stream: "cam"}); err != nil {
			t.Errorf("with Redis down: %v, want allowed", err)
		}
	}
	if n := strings.Count(logs.String(), "Redis cannot be reached"); n != 1 {
		t.Errorf("Redis down logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestDeriveAdvertise(t *testing.T) {
	l := Listeners{RTSP: "127.0.0.1:8554", RTMP: "127.0.0.1:1935", HTTP: "127.0.0.1:8080"}
	for _, c := range []struct {
		setting, listen string
		l               Listeners
		want            Advertise
		err             string
	}{
		{"", "127.0.0.1", l, Advertise{"rtsp://127.0.0.1:8554", "rtmp://127.0.0.1:1935", "http://127.0.0.1:8080"}, ""},
		{"", "10.1.2.3", l, Advertise{"rtsp://10.1.2.3:8554", "rtmp://10.1.2.3:1935", "http://10.1.2.3:8080"}, ""},
		{"edge1.example", "::", Listeners{RTSP: "[::1]:554"}, Advertise{RTSP: "rtsp://edge1.example:554"}, ""},
		{"fd00::5", "::", Listeners{RTMP: "[::1]:1935"}, Advertise{RTMP: "rtmp://[fd00::5]:1935"}, ""},
		{"rtsp://lb.example:8554, http://lb.example", "::", l, Advertise{RTSP: "rtsp://lb.example:8554", HTTP: "http://lb.example"}, ""},
		{"http://lb.example:8080", "::", l, Advertise{}, "names neither an rtsp:// nor an rtmp:// URL"},
		{"", "127.0.0.1", Listeners{HTTP: "127.0.0.1:8080"}, Advertise{}, "needs RTSP or RTMP on"},
	} {
		got, err := DeriveAdvertise(c.setting, c.listen, c.l)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error with %q", c.setting, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q on %s: %+v, %v; want %+v", c.setting, c.listen, got, err, c.want)
		}
	}
}
