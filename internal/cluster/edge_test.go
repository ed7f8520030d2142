package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/proxy"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestEdgeFollowsItsStreamAndEndsWithIt: a reader's miss starts one pull
// from the origin the registry names (two misses, one pull); while that
// pull fails, the heartbeat's look-up follows the path to the node that
// registered it since, and ends the pull once no node has it.
func TestEdgeFollowsItsStreamAndEndsWithIt(t *testing.T) {
	mr := miniredis.RunT(t)
	n := newTestNode(t, mr, "3", nil)
	h := hub.New(hub.Options{Observer: n})
	t.Cleanup(h.Close)
	pulls := &proxy.Manager{Hub: h, BackoffMin: 50 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
	t.Cleanup(pulls.Close)
	n.Hub, n.Pulls = h, pulls
	ctx := context.Background()
	register := func(node, instance, addr string) {
		rec := &StreamRecord{Path: "live/cam", Node: node, Instance: instance, RTSP: "rtsp://" + addr + "/live/cam", Started: time.Now()}
		mr.Del(streamKey("live/cam"))
		if err := claimScript.Run(ctx, n.rdb, []string{streamKey("live/cam")}, claimArgs(instance, time.Minute, rec.fields())...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	originA, originB := testutil.ClosedAddr(t), testutil.ClosedAddr(t)
	register("1", "instance-of-1", originA)

	n.StreamNotFound("live/cam", hub.Origin{Proto: "rtsp"})
	n.StreamNotFound("live/cam", hub.Origin{Proto: "rtmp"})
	n.StreamNotFound("live/cam", hub.Origin{Proto: "rtsp", Params: "berth_edge=2"}) // another edge: never a pull for it
	testutil.WaitFor(t, 2*time.Second, "the edge pull from node 1", func() bool {
		e := n.Edges()
		return len(e) == 1 && e[0].Origin == "1" && strings.Contains(e[0].URL, originA)
	})
	if got := len(pulls.List()); got != 1 {
		t.Fatalf("%d pulls for two readers' misses, want 1", got)
	}
	testutil.WaitFor(t, 2*time.Second, "the pull of the dead origin to fail", func() bool {
		in, _ := pulls.Get(proxy.Key("live/cam"))
		return in.State == proxy.StateRetrying
	})

	register("2", "instance-of-2", originB) // the publisher moved to node 2
	n.watchEdges()
	if e := n.Edges(); len(e) != 1 || e[0].Origin != "2" || !strings.Contains(e[0].URL, originB+"/live/cam?berth_edge=3") {
		t.Fatalf("after the move: edges %+v, want one pulling from node 2", e)
	}
	if in, ok := pulls.Get(proxy.Key("live/cam")); !ok || !strings.Contains(in.URL, originB) {
		t.Fatalf("the pull: %+v", in)
	}

	testutil.WaitFor(t, 2*time.Second, "the pull of node 2 to fail", func() bool {
		in, _ := pulls.Get(proxy.Key("live/cam"))
		return in.State == proxy.StateRetrying
	})
	mr.Del(streamKey("live/cam")) // node 2 left
	n.watchEdges()
	if e, l := n.Edges(), pulls.List(); len(e) != 0 || len(l) != 0 {
		t.Fatalf("after the origin left: edges %+v, pulls %+v; want none", e, l)
	}
	if got := n.stats.edgesStarted.Load(); got != 2 {
		t.Errorf("edge pulls started: %d, want 2", got)
	}
}

// TestLookupOfAMissingPathEndsAtClose: a reader's wait for a path no node
// has keeps it looked up until the wait is over, but a node that closes
// stops at once rather than at the end of the wait.
func TestLookupOfAMissingPathEndsAtClose(t *testing.T) {
	mr := miniredis.RunT(t)
	n := newTestNode(t, mr, "1", nil)
	n.Wait = time.Minute
	done := make(chan struct{})
	go func() {
		defer close(done)
		if rec, _ := n.lookupWhileWaited("live/none"); rec != nil {
			t.Errorf("looked up %+v for a path no node has", rec)
		}
	}()
	testutil.WaitFor(t, 2*time.Second, "the first look-up", func() bool { return mr.CommandCount() > 0 })
	n.Close(time.Second)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the look-up still runs 5 s after the node closed (the reader's wait is a minute)")
	}
}
