package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/cluster"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// clusterTTL is the tests' [cluster] ttl: small, so expiries take seconds.
const clusterTTL = 2

// startNode starts an in-process Berth that joins the cluster at redis as id.
func startNode(t *testing.T, redis *testutil.RedisServer, id string) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	srv, logs, err := tryNode(t, redis, id)
	if err != nil {
		t.Fatalf("node %s: %v\n%s", id, err, logs)
	}
	return srv, logs
}

func tryNode(t *testing.T, redis *testutil.RedisServer, id string) (*server.Server, *testutil.LogBuffer, error) {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.API.Secret = "s3cret"
	cfg.SRT.Port, cfg.RTC.Port = 0, 0
	cfg.General.MaxStreamWaitMS = 8000
	cfg.General.StreamNoneReaderDelayMS = 30000 // edge pulls outlive the probes (the test checks them)
	cfg.Cluster.Redis, cfg.Cluster.NodeID, cfg.Cluster.TTL = redis.URL(), id, clusterTTL
	logs := &testutil.LogBuffer{}
	srv := server.New(cfg, logging.New(logs, slog.LevelDebug))
	srv.Ephemeral = true
	if err := srv.Start(); err != nil {
		return nil, logs, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if t.Failed() {
			t.Logf("node %s log:\n%s", id, logs.String())
		}
	})
	return srv, logs, nil
}

// registryNode is the node_id the registry names for path, "" for none.
func registryNode(t *testing.T, redis *testutil.RedisServer, path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := cluster.ReadStatus(ctx, redis.URL())
	if err != nil {
		return ""
	}
	for _, s := range st.Streams {
		if s.Path == path {
			return s.Node
		}
	}
	return ""
}

// publishOn publishes live/cam to node (node_id id) over RTSP and waits
// until the registry names id for it.
func publishOn(t *testing.T, redis *testutil.RedisServer, node *server.Server, id string) {
	t.Helper()
	push(t, node, testmedia.H264AAC, "rtsp://"+node.Addr("rtsp")+"/live/cam", "live/cam")
	testutil.WaitFor(t, 5*time.Second, "live/cam registered on "+id, func() bool { return registryNode(t, redis, "live/cam") == id })
}

// TestClusterPlaysAnywhere: ffmpeg publishes to node A over RTSP; ffprobe
// plays the stream from B over RTMP (three at once) and from C over HLS.
// B and C each pull it from A once: A has one reader per edge, each named
// by its edge parameter, and getClusterInfo lists the stream on A.
func TestClusterPlaysAnywhere(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	redis := testutil.StartRedis(t)
	a, _ := startNode(t, redis, "a")
	b, _ := startNode(t, redis, "b")
	c, _ := startNode(t, redis, "c")
	publishOn(t, redis, a, "a")

	errs := make(chan error, 3)
	for range 3 {
		go func() {
			codecs, err := probe("rtmp://" + b.Addr("rtmp") + "/live/cam")
			if err == nil && codecs != "h264,aac" {
				err = fmt.Errorf("codecs %q", codecs)
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("ffprobe over RTMP from b: %v", err)
		}
	}
	// ffprobe names an HLS stream's codecs once per program and once per stream.
	if codecs, err := probe("http://" + c.Addr("http") + "/live/cam/hls.m3u8"); err != nil || !strings.HasPrefix(codecs, "h264,aac") {
		t.Errorf("ffprobe over HLS from c: %q, %v", codecs, err)
	}

	st := a.Hub.Get("live/cam")
	var edges []string
	for _, r := range st.ReaderList() {
		edges = append(edges, r.Who().Params)
	}
	if len(edges) != 2 || !strings.Contains(strings.Join(edges, " "), "berth_edge=b") || !strings.Contains(strings.Join(edges, " "), "berth_edge=c") {
		t.Errorf("a's readers: %q; want one per edge (berth_edge=b, berth_edge=c)", edges)
	}
	for _, m := range list(api(t, a, "getMediaList", "app", "live", "stream", "cam")) {
		if n, _ := m["totalReaderCount"].(float64); n != 2 {
			t.Errorf("a's getMediaList %s: totalReaderCount %v, want 2 (one per edge)", m["schema"], m["totalReaderCount"])
		}
	}
	info := api(t, c, "getClusterInfo")
	data, _ := info["data"].(map[string]any)
	if info["code"] != 0.0 || data["node_id"] != "c" || len(data["nodes"].([]any)) != 3 || len(data["edges"].([]any)) != 1 {
		t.Errorf("c's getClusterInfo: %v", info)
	}
	if s := data["streams"].([]any); len(s) != 1 || s[0].(map[string]any)["node_id"] != "a" {
		t.Errorf("c's getClusterInfo streams: %v", s)
	}
	// The status page's JSON carries the same view.
	res, err := http.Get("http://" + b.Addr("http") + "/berth/status.json?secret=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Data struct{ Cluster cluster.Status }
	}
	json.NewDecoder(res.Body).Decode(&page)
	res.Body.Close()
	if pc := page.Data.Cluster; pc.NodeID != "b" || !pc.RedisUp || len(pc.Nodes) != 3 || len(pc.Edges) != 1 || pc.Edges[0].Origin != "a" {
		t.Errorf("b's status page cluster section: %+v", pc)
	}
	// And the metrics.
	series := seriesOf(scrapeMetrics(t, "http://"+b.Addr("http")+"/metrics"), "berth_cluster_edge_pulls")
	up := seriesOf(scrapeMetrics(t, "http://"+b.Addr("http")+"/metrics"), "berth_cluster_node_up")
	if series["node_id=b"] != 1 || up["node_id=b"] != 1 {
		t.Errorf("b's metrics: berth_cluster_edge_pulls %v, berth_cluster_node_up %v; want 1 and 1", series, up)
	}
	if n := len(b.Cluster().Edges()); n != 1 {
		t.Errorf("b runs %d edge pulls for three readers, want 1", n)
	}
}

// TestClusterRefusesASecondPublisherNamingTheFirst: live/cam is live on A;
// a publisher of the same path on B is refused, and B's log names node a
// and the fix.
func TestClusterRefusesASecondPublisherNamingTheFirst(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	redis := testutil.StartRedis(t)
	a, _ := startNode(t, redis, "a")
	b, blogs := startNode(t, redis, "b")
	publishOn(t, redis, a, "a")

	for _, url := range []string{"rtmp://" + b.Addr("rtmp") + "/live/cam", "rtsp://" + b.Addr("rtsp") + "/live/cam"} {
		exited := run(t, "-re", "-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy", "-t", "5", "-f", map[bool]string{true: "rtsp", false: "flv"}[strings.HasPrefix(url, "rtsp")], url)
		waitExit(t, exited, "the refused publisher on b")
	}
	line := blogs.WaitLine(t, "proto=rtmp", `already live on node \"a\"`, "publish to node a")
	blogs.WaitLine(t, "proto=rtsp", `already live on node \"a\"`)
	if !strings.Contains(line, "rtsp://127.0.0.1:") {
		t.Errorf("the refusal does not say where the stream lives: %s", line)
	}
	if b.Hub.Get("live/cam") != nil {
		t.Error("b accepted the second publisher")
	}
	if registryNode(t, redis, "live/cam") != "a" {
		t.Error("the registry no longer names a")
	}
}

// TestClusterKeepsServingWithoutRedis: with a stream live on A and played
// through B, redis-server is killed: nothing drops (A's publisher and B's
// reader go on), each node says so once; after redis-server restarts empty,
// the registry is whole again (both nodes and the stream).
func TestClusterKeepsServingWithoutRedis(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	redis := testutil.StartRedis(t)
	a, alogs := startNode(t, redis, "a")
	b, _ := startNode(t, redis, "b")
	publishOn(t, redis, a, "a")
	player := run(t, "-i", "rtmp://"+b.Addr("rtmp")+"/live/cam", "-f", "null", "-")
	testutil.WaitFor(t, 10*time.Second, "b's edge to play", func() bool {
		st := b.Hub.Get("live/cam")
		return st != nil && st.Readers() == 1 && st.FramesIn.Load() > 50
	})

	redis.Stop()
	alogs.WaitLine(t, "Redis cannot be reached", "keeps serving")
	// Three heartbeats without Redis (each a failed registry call on A);
	// the stream flows on A and through B.
	before := b.Hub.Get("live/cam").FramesIn.Load()
	registryErrors := func() float64 {
		return seriesOf(scrapeMetrics(t, "http://"+a.Addr("http")+"/metrics"), "berth_cluster_registry_errors_total")["node_id=a"]
	}
	failed := registryErrors()
	testutil.WaitFor(t, 10*time.Second, "three heartbeats without Redis", func() bool { return registryErrors() >= failed+3 })
	select {
	case <-player:
		t.Fatal("b's player stopped while Redis was down")
	default:
	}
	if st := b.Hub.Get("live/cam"); st == nil || st.FramesIn.Load() <= before {
		t.Fatal("b's edge stream stopped while Redis was down")
	}
	if n := strings.Count(alogs.String(), "Redis cannot be reached"); n != 1 {
		t.Errorf("a logged Redis down %d times, want once", n)
	}

	redis.Restart()
	testutil.WaitFor(t, 2*clusterTTL*time.Second, "the registry whole again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := cluster.ReadStatus(ctx, redis.URL())
		return err == nil && len(st.Nodes) == 2 && len(st.Streams) == 1 && st.Streams[0].Node == "a"
	})
	alogs.WaitLine(t, "Redis is back")
	if a.Hub.Get("live/cam") == nil {
		t.Error("a's stream ended")
	}
}

// TestClusterEdgesFollowAPublisherToAnotherNode: A runs as a process and
// is killed with SIGKILL while C's RTSP readers play its stream through C;
// the publisher moves to B (refused there until A's entry expires, as a
// retrying encoder would be). Reconnecting readers of C play again within
// ttl+5 s of the kill, now from B.
func TestClusterEdgesFollowAPublisherToAnotherNode(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	redis := testutil.StartRedis(t)
	bin := testutil.GoBinary(t, "github.com/berthmedia/berth/cmd/berth")
	rtspA := freePort(t)
	ini := filepath.Join(t.TempDir(), "a.ini")
	os.WriteFile(ini, []byte(fmt.Sprintf("[general]\nlisten_ip=127.0.0.1\n[rtsp]\nport=%d\n[rtmp]\nport=0\n[http]\nport=0\n[rtp_proxy]\nport=0\n"+
		"[srt]\nport=0\n[rtc]\nport=0\n[cluster]\nredis=%s\nnode_id=a\nttl=%d\n", rtspA, redis.URL(), clusterTTL)), 0o644)
	alogs := &testutil.LogBuffer{}
	procA := exec.Command(bin, "-c", ini)
	procA.Stdout, procA.Stderr = alogs, alogs
	if err := procA.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { procA.Process.Kill(); procA.Wait() })
	alogs.WaitLine(t, "Berth is listening")
	b, _ := startNode(t, redis, "b")
	c, _ := startNode(t, redis, "c")

	_, stopA := pushLoop(t, fmt.Sprintf("rtsp://127.0.0.1:%d/live/cam", rtspA))
	testutil.WaitFor(t, 10*time.Second, "live/cam registered on a", func() bool { return registryNode(t, redis, "live/cam") == "a" })
	if codecs, err := probe("rtsp://" + c.Addr("rtsp") + "/live/cam"); err != nil || codecs != "h264,aac" {
		t.Fatalf("ffprobe from c before the kill: %q, %v", codecs, err)
	}

	procA.Process.Signal(syscall.SIGKILL)
	procA.Wait()
	killed := time.Now()
	stopA()
	// The encoder moves to B and retries until B accepts it.
	ctx, cancel := context.WithCancel(context.Background())
	encoderDone := make(chan struct{})
	t.Cleanup(func() { cancel(); <-encoderDone })
	go func() {
		defer close(encoderDone)
		for ctx.Err() == nil {
			cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC),
				"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+b.Addr("rtsp")+"/live/cam")
			if cmd.Run() != nil && ctx.Err() == nil {
				select { // refused while A's entry lives: retry as an encoder does
				case <-ctx.Done():
				case <-time.After(300 * time.Millisecond):
				}
			}
		}
	}()
	// A reconnecting player of C, until it plays the stream C now pulls
	// from B (while C's pull of A retries, within its grace time, a player
	// still gets the last frames A sent: that is not playing again).
	var played time.Duration
	for time.Since(killed) < (clusterTTL+5)*time.Second+15*time.Second {
		codecs, err := probe("rtsp://" + c.Addr("rtsp") + "/live/cam")
		edges := c.Cluster().Edges()
		if err == nil && codecs == "h264,aac" && len(edges) == 1 && edges[0].Origin == "b" {
			played = time.Since(killed)
			break
		}
	}
	if played == 0 {
		t.Fatalf("c's reader never played again from b after the publisher moved there; c's edges: %+v", c.Cluster().Edges())
	}
	t.Logf("c's reader plays again, from b, %s after a was killed (ttl %d s)", played.Round(100*time.Millisecond), clusterTTL)
	if played > (clusterTTL+5)*time.Second {
		t.Errorf("c's reader played again after %s, want within ttl+5 s", played)
	}
	if n := registryNode(t, redis, "live/cam"); n != "b" {
		t.Errorf("the registry names %q for live/cam, want b", n)
	}
}

// TestClusterRefusesANodeIDThatIsLive: a second Berth with node_id a, while
// a runs, does not start; its error names the node_id, where it is live
// and the fix.
func TestClusterRefusesANodeIDThatIsLive(t *testing.T) {
	redis := testutil.StartRedis(t)
	a, _ := startNode(t, redis, "a")
	_, _, err := tryNode(t, redis, "a")
	var live *cluster.NodeIDLiveError
	if !errors.As(err, &live) {
		t.Fatalf("second node a started (err %v)", err)
	}
	msg := err.Error()
	for _, want := range []string{`node_id "a" is already live`, "rtsp://127.0.0.1:" + strings.Split(a.Addr("rtsp"), ":")[1], "give this one its own [cluster] node_id"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal %q does not say %q", msg, want)
		}
	}
}

// TestClusterTTLReloadsLive: [cluster] ttl changes on a running node (the
// entries' TTL and the heartbeat); redis and node_id need a restart and
// the reload says so.
func TestClusterTTLReloadsLive(t *testing.T) {
	redis := testutil.StartRedis(t)
	a, _ := startNode(t, redis, "a")
	next := *a.CurrentConfig()
	next.Cluster.TTL, next.Cluster.NodeID = 7, "a2"
	rep, err := a.Reload(&next)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := rep.Key("cluster.ttl"); !ok || !c.Live {
		t.Errorf("cluster.ttl: %+v, want applied live", c)
	}
	if c, ok := rep.Key("cluster.node_id"); !ok || c.Live || !strings.Contains(c.Note, "at start") {
		t.Errorf("cluster.node_id: %+v, want a restart", c)
	}
	testutil.WaitFor(t, 2*clusterTTL*time.Second, "the node entry's TTL to be 7 s", func() bool {
		ms, _ := strconv.Atoi(strings.TrimPrefix(redis.Do("PTTL", "berth:node:a"), ":"))
		return ms > 3000
	})
}
