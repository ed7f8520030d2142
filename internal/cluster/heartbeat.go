package cluster

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/berthmedia/berth/internal/cputime"
	"github.com/berthmedia/berth/internal/hub"
)

// health is Redis as this node last found it. Its first failure is logged
// at WARN once, a reminder every stillDownEvery, and the recovery once:
// a Redis that stays down for an hour is a few lines, not thousands.
type health struct {
	log *slog.Logger
	url string

	mu       sync.Mutex
	down     bool
	since    time.Time // when it went down
	lastLog  time.Time
	failures int
	lastErr  string
	up       atomic.Bool
}

const stillDownEvery = time.Minute

func (h *health) failed(what string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.up.Store(false)
	h.failures++
	h.lastErr = err.Error()
	now := time.Now()
	if !h.down {
		h.down, h.since, h.lastLog = true, now, now
		h.log.Warn("cluster: Redis cannot be reached; this node keeps serving what it has, plays of streams on other nodes wait for Redis, and it retries at every heartbeat",
			"redis", h.url, "while", what, "err", err, "fix", "start Redis or correct [cluster] redis")
		return
	}
	if now.Sub(h.lastLog) >= stillDownEvery {
		h.lastLog = now
		h.log.Warn("cluster: Redis still cannot be reached", "redis", h.url, "for", now.Sub(h.since).Round(time.Second),
			"failures", h.failures, "err", err)
	}
}

// isDown reports whether the last registry call failed: lookups made for
// a waiting publisher or reader are skipped then, so an outage does not
// add a timeout to every publish; the heartbeat keeps trying.
func (h *health) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// ok records a call that worked. Nothing needs re-registering after an
// outage: every heartbeat refreshes the node and all its streams.
func (h *health) ok() {
	h.up.Store(true)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return
	}
	h.log.Info("cluster: Redis is back; this node and its streams are registered again", "redis", h.url,
		"down_for", time.Since(h.since).Round(time.Second), "failures", h.failures)
	h.down, h.failures = false, 0
}

// stats are the counters the metrics read.
type stats struct {
	errors       atomic.Uint64 // registry calls that failed
	edgesStarted atomic.Uint64 // edge pulls started
	edgeFailures atomic.Uint64 // edge pulls that failed and were re-resolved or ended
	conflicts    atomic.Uint64 // publishes refused or closed because another node has the path
	queueDrops   atomic.Uint64 // registry changes dropped because the queue was full
}

// Observer calls: they queue work and return; the hub's goroutines never
// wait for Redis.
var _ hub.Observer = (*Node)(nil)

// StreamPublished registers a stream this node originates. A stream this
// node pulls from another node (an edge) is never registered: an edge only
// pulls from the node that originates, so loops cannot form.
func (n *Node) StreamPublished(s *hub.Stream) {
	if n.isEdge(s) {
		return
	}
	n.mu.Lock()
	n.owned[s.Path] = s
	n.mu.Unlock()
	n.enqueue(op{register: true, s: s})
}

// StreamEnded removes the stream's entry at once (not after a TTL), so a
// publisher that moves to another node is accepted there immediately.
func (n *Node) StreamEnded(s *hub.Stream) {
	n.mu.Lock()
	mine := n.owned[s.Path] == s
	if mine {
		delete(n.owned, s.Path)
	}
	n.mu.Unlock()
	if mine {
		n.enqueue(op{s: s})
	}
}

func (n *Node) ReaderAdded(*hub.Reader)   {}
func (n *Node) ReaderRemoved(*hub.Reader) {}

func (n *Node) enqueue(o op) {
	if n.closed.Load() {
		return
	}
	select {
	case n.ops <- o:
	default:
		// The heartbeat registers every live stream anyway; a removal
		// that is dropped expires after the TTL.
		if n.stats.queueDrops.Add(1) == 1 {
			n.log().Warn("cluster: registry queue full (Redis slow?); a change was dropped, the next heartbeat repairs it",
				"path", o.s.Path)
		}
	}
}

// worker applies queued changes in order.
func (n *Node) worker() {
	defer n.wg.Done()
	for {
		select {
		case <-n.quit:
			return
		case o := <-n.ops:
			if o.register {
				n.registerNew(o.s)
			} else {
				n.unregister(o.s)
			}
		}
	}
}

// registerNew claims a newly published path. Two nodes can pass the
// publish gate at the same moment; the registry's atomic claim picks one,
// and the other closes its publisher with the winner's name.
func (n *Node) registerNew(s *hub.Stream) {
	if s.Ended() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.callTimeout())
	defer cancel()
	v, err := claimScript.Run(ctx, n.rdb, []string{streamKey(s.Path)}, claimArgs(n.instance, n.getTTL(), n.streamRecord(s).fields())...).Result()
	if err != nil {
		n.stats.errors.Add(1)
		n.health.failed("registering stream "+s.Path, err)
		return
	}
	n.health.ok()
	owner, err := claimReply(v)
	if err != nil || owner == nil {
		return
	}
	n.stats.conflicts.Add(1)
	n.mu.Lock()
	if n.owned[s.Path] == s {
		delete(n.owned, s.Path)
	}
	n.mu.Unlock()
	n.log().Warn("cluster: stream is already live on another node (both publishes began at once, that one registered first); closing this node's publisher",
		"path", s.Path, "node_id", owner.Node, "fix", "publish "+s.Path+" to node "+owner.Node+" only")
	s.Close()
}

func (n *Node) unregister(s *hub.Stream) {
	ctx, cancel := context.WithTimeout(context.Background(), n.callTimeout())
	defer cancel()
	if err := releaseScript.Run(ctx, n.rdb, []string{streamKey(s.Path)}, n.instance).Err(); err != nil && !errors.Is(err, redis.Nil) {
		n.stats.errors.Add(1)
		n.health.failed("removing stream "+s.Path, err)
		return
	}
	n.health.ok()
}

// streamRecord is s's entry: this node's play URLs for it.
func (n *Node) streamRecord(s *hub.Stream) *StreamRecord {
	r := &StreamRecord{Path: s.Path, Node: n.ID(), Instance: n.instance, Publisher: s.Origin.Proto, Started: s.Since}
	if a := n.opts.Advertise.RTSP; a != "" {
		r.RTSP = a + "/" + s.Path
		r.Protocols = append(r.Protocols, "rtsp")
	}
	if a := n.opts.Advertise.RTMP; a != "" {
		r.RTMP = a + "/" + s.Path
		r.Protocols = append(r.Protocols, "rtmp")
	}
	if n.opts.Advertise.HTTP != "" {
		r.Protocols = append(r.Protocols, "http-flv", "hls", "http-fmp4", "http-ts")
	}
	return r
}

// heartbeat refreshes this node's entry and every stream it originates
// each ttl/3, and looks after the edge pulls. Refreshing every stream each
// time is also the repair: after Redis restarts empty, or after a dropped
// change, the registry is whole again within one beat.
func (n *Node) heartbeat() {
	defer n.wg.Done()
	for {
		n.beat()
		n.watchEdges()
		select {
		case <-n.quit:
			return
		case <-time.After(n.getTTL() / 3):
		}
	}
}

func (n *Node) beat() {
	ctx, cancel := context.WithTimeout(context.Background(), n.callTimeout())
	defer cancel()
	n.mu.Lock()
	streams := make([]*hub.Stream, 0, len(n.owned))
	for _, s := range n.owned {
		streams = append(streams, s)
	}
	n.mu.Unlock()
	ttl := n.getTTL()
	// EVALSHA: the script's text is not sent a thousand times per beat. A
	// Redis that restarted has no scripts; load it and send the beat again.
	var nodeCmd *redis.Cmd
	cmds := make([]*redis.Cmd, len(streams))
	send := func() error {
		pipe := n.rdb.Pipeline()
		nodeCmd = claimScript.EvalSha(ctx, pipe, []string{nodeKey(n.ID())}, claimArgs(n.instance, ttl, n.nodeRecord().fields())...)
		for i, s := range streams {
			cmds[i] = claimScript.EvalSha(ctx, pipe, []string{streamKey(s.Path)}, claimArgs(n.instance, ttl, n.streamRecord(s).fields())...)
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := send()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err = claimScript.Load(ctx, n.rdb).Err(); err == nil {
			err = send()
		}
	}
	if err != nil && !isScriptReply(err) {
		n.stats.errors.Add(1)
		n.health.failed("sending the heartbeat", err)
		return
	}
	n.health.ok()
	if owner, _ := claimReply(nodeCmd.Val()); owner != nil {
		n.stats.conflicts.Add(1)
		n.logConflict("node "+n.ID(), owner.Node, "another running Berth registered this node_id while Redis was away; give one of them its own [cluster] node_id")
	}
	for i, c := range cmds {
		if owner, _ := claimReply(c.Val()); owner != nil {
			n.stats.conflicts.Add(1)
			n.logConflict(streams[i].Path, owner.Node, "the path was published on two nodes while Redis was away; this node keeps serving its publisher unregistered; stop one of the publishers")
		}
	}
}

func isScriptReply(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "ERR ") // a script error, not the connection
}

// logConflict says once a minute per path that another node holds it.
func (n *Node) logConflict(what, other, fix string) {
	now := time.Now()
	if v, ok := n.conflictLogs.Load(what); ok && now.Sub(v.(time.Time)) < stillDownEvery {
		return
	}
	n.conflictLogs.Store(what, now)
	n.log().Warn("cluster: registry entry held by another node", "what", what, "node_id", other, "fix", fix)
}

// loadSampler turns cumulative counters into rates between heartbeats.
type loadSampler struct {
	at    time.Time
	cpu   time.Duration
	bytes uint64
	last  Load
}

func (n *Node) currentLoad() Load {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := Load{Streams: len(n.owned), Edges: len(n.edges)}
	if n.Hub != nil {
		var out uint64
		for _, v := range n.Hub.Stats().BytesOut {
			out += v
		}
		for _, s := range n.Hub.Streams() {
			l.Readers += s.Readers()
		}
		now, cpu := time.Now(), cputime.Process()
		if ls := &n.load; !ls.at.IsZero() {
			if dt := now.Sub(ls.at); dt > 100*time.Millisecond {
				l.CPU = int(100 * float64(cpu-ls.cpu) / float64(dt) / float64(runtime.NumCPU()))
				if out >= ls.bytes {
					l.EgressBps = uint64(float64(out-ls.bytes) * 8 / dt.Seconds())
				}
				ls.at, ls.cpu, ls.bytes = now, cpu, out
				ls.last = l
				return l
			}
			l.CPU, l.EgressBps = ls.last.CPU, ls.last.EgressBps
			return l
		}
		n.load.at, n.load.cpu, n.load.bytes = now, cpu, out
	}
	return l
}
