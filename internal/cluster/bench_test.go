package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testutil"
)

// benchNode is a node on a real redis-server that originates n streams.
func benchNode(b *testing.B, streams int) *Node {
	redis := testutil.StartRedis(b)
	n, err := New(Options{Redis: redis.URL(), NodeID: "bench", TTL: 10 * time.Second,
		Advertise: Advertise{RTSP: "rtsp://10.0.0.1:8554", RTMP: "rtmp://10.0.0.1:1935"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close(time.Second) })
	for i := range streams {
		p := fmt.Sprintf("live/cam%d", i)
		n.owned[p] = &hub.Stream{Path: p, Origin: hub.Origin{Proto: "rtsp"}, Since: time.Now()}
	}
	return n
}

// BenchmarkHeartbeat is one heartbeat of a node that originates 1,000
// streams: one pipeline of 1,001 claims. Each node sends one per ttl/3.
func BenchmarkHeartbeat(b *testing.B) {
	for _, streams := range []int{10, 1000} {
		b.Run(fmt.Sprint(streams, "streams"), func(b *testing.B) {
			n := benchNode(b, streams)
			b.ReportAllocs()
			for b.Loop() {
				n.beat()
			}
			if n.stats.errors.Load() > 0 {
				b.Fatalf("%d registry errors", n.stats.errors.Load())
			}
		})
	}
}

// BenchmarkLookup is what a reader's miss or a publish costs the registry.
func BenchmarkLookup(b *testing.B) {
	n := benchNode(b, 1000)
	n.beat()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if rec, err := lookup(ctx, n.rdb, "live/cam7"); err != nil || rec == nil {
			b.Fatal(rec, err)
		}
	}
}
