// Package cluster is the stream registry on Redis that lets any Berth node
// serve any stream: each node registers itself and every stream it
// originates (app/stream -> node) with a TTL its heartbeat refreshes; a
// reader of a stream this node does not have looks it up and the node pulls
// it from its origin, once however many readers it has (docs/cluster.md).
//
// A Node is a hub.Observer (publishes register, ends unregister, a missing
// path starts an edge pull) and an auth.Gate (a publish of a path live on
// another node is refused with that node's name). Every Redis call runs off
// the hub's goroutines with a deadline; Redis being down leaves every node
// serving what it has.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/proxy"
)

func init() {
	// go-redis prints pool errors to stderr on its own; the Node says what
	// matters once, in Berth's log, instead.
	redis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Options configure a Node; Hub and Pulls may be set after New, before Run.
type Options struct {
	Redis     string        // redis:// URL
	NodeID    string        // this node's name in the registry
	Advertise Advertise     // the base URLs other nodes pull from
	TTL       time.Duration // entries outlive the last heartbeat this long; 0 = 10 s
	Version   string        // Berth's version, shown in status
	Log       *slog.Logger
}

// Advertise is how other nodes reach this one: base URLs without a path
// ("rtsp://10.0.0.5:8554"); an empty one is a protocol this node does not
// serve.
type Advertise struct{ RTSP, RTMP, HTTP string }

// lookupTimeout bounds a lookup made for a waiting reader or publisher: a
// slow Redis costs a player at most this, never the hub.
const lookupTimeout = 2 * time.Second

// Node is this server's membership in the cluster.
type Node struct {
	opts  Options
	Hub   *hub.Hub
	Pulls *proxy.Manager // edge pulls are added here (AutoClose: they end after the last reader)
	// Wait is how long a reader of a missing path waits (maxStreamWaitMS):
	// while it may still wait, a path no node has is looked up again, so a
	// publisher that reaches another node meanwhile is found (failover).
	Wait     time.Duration
	instance string
	started  time.Time
	rdb      *redis.Client

	ttl    atomic.Int64 // time.Duration; hot reload
	ops    chan op      // registrations and removals, in order, off the hub's goroutines
	quit   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool

	mu    sync.Mutex
	edges map[string]*edge // path -> the edge pull this node runs for it
	owned map[string]*hub.Stream
	load  loadSampler

	health       health
	stats        stats
	conflictLogs sync.Map // what -> when its last "held by another node" line was logged
}

// op is one registry change queued by an observer call.
type op struct {
	register bool
	s        *hub.Stream
}

// New checks the options and opens the Redis client (which connects
// lazily: New does no network I/O).
func New(opts Options) (*Node, error) {
	if opts.NodeID == "" {
		return nil, errors.New("cluster: node_id is empty")
	}
	rdb, err := newClient(opts.Redis)
	if err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	rand.Read(b)
	n := &Node{opts: opts, instance: hex.EncodeToString(b), started: time.Now(), rdb: rdb,
		ops: make(chan op, 1024), quit: make(chan struct{}),
		edges: map[string]*edge{}, owned: map[string]*hub.Stream{}}
	n.SetTTL(opts.TTL)
	n.health.log = opts.Log
	n.health.url = proxy.Redact(opts.Redis)
	return n, nil
}

// ID is this node's node_id.
func (n *Node) ID() string { return n.opts.NodeID }

// SetTTL changes the entries' TTL and the heartbeat (ttl/3) from the next
// heartbeat on; safe while running (hot reload of [cluster] ttl).
func (n *Node) SetTTL(ttl time.Duration) {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	n.ttl.Store(int64(ttl))
}

func (n *Node) getTTL() time.Duration { return time.Duration(n.ttl.Load()) }

func (n *Node) log() *slog.Logger { return n.opts.Log }

// ErrNodeIDLive is the start refused because another running Berth holds
// this node_id.
var ErrNodeIDLive = errors.New("node_id already live")

// NodeIDLiveError names the node_id, where it is live and the fix.
type NodeIDLiveError struct {
	NodeID, Redis, Where string
	Beat                 time.Time
	TTL                  time.Duration
}

func (e *NodeIDLiveError) Error() string {
	where := e.Where
	if where == "" {
		where = "an address it did not advertise"
	}
	return fmt.Sprintf("cluster: node_id %q is already live in %s (advertised at %s, last heartbeat %s ago, still beating after %s): "+
		"two nodes cannot share a node_id; give this one its own [cluster] node_id (or --cluster-node-id), or stop the other",
		e.NodeID, e.Redis, where, time.Since(e.Beat).Round(100*time.Millisecond), e.TTL)
}

func (e *NodeIDLiveError) Unwrap() error { return ErrNodeIDLive }

// Claim registers this node, refusing when another running Berth holds the
// same node_id: it waits up to one TTL first, so a node restarted right
// after a crash (its old entry still there) starts once the entry expires.
// Redis unreachable is no refusal: the node starts alone, logs once, and
// registers when Redis comes back.
func (n *Node) Claim(ctx context.Context) error {
	ttl := n.getTTL()
	deadline := time.Now().Add(ttl + ttl/3)
	told := false
	for {
		owner, err := n.claimNode(ctx)
		if err != nil {
			n.health.failed("registering this node", err)
			return nil
		}
		if owner == nil {
			n.health.ok()
			n.log().Info("cluster: node registered", "node_id", n.ID(), "redis", n.health.url, "ttl", ttl,
				"rtsp", n.opts.Advertise.RTSP, "rtmp", n.opts.Advertise.RTMP, "http", n.opts.Advertise.HTTP)
			return nil
		}
		if time.Now().After(deadline) {
			rec, _ := n.readNode(ctx, n.ID())
			e := &NodeIDLiveError{NodeID: n.ID(), Redis: n.health.url, Beat: owner.Beat, TTL: ttl}
			if rec != nil {
				e.Where = firstOf(rec.RTSP, rec.RTMP, rec.HTTP)
			}
			return e
		}
		if !told {
			told = true
			n.log().Warn("cluster: another instance holds this node_id; waiting up to one ttl for its entry to expire (a crashed node's does)",
				"node_id", n.ID(), "ttl", ttl)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(ttl / 6):
		}
	}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (n *Node) nodeRecord() *NodeRecord {
	return &NodeRecord{ID: n.ID(), Instance: n.instance, RTSP: n.opts.Advertise.RTSP, RTMP: n.opts.Advertise.RTMP,
		HTTP: n.opts.Advertise.HTTP, Version: n.opts.Version, Started: n.started, Beat: time.Now(), Load: n.currentLoad()}
}

func (n *Node) claimNode(ctx context.Context) (*Owner, error) {
	ctx, cancel := context.WithTimeout(ctx, n.callTimeout())
	defer cancel()
	v, err := claimScript.Run(ctx, n.rdb, []string{nodeKey(n.ID())}, claimArgs(n.instance, n.getTTL(), n.nodeRecord().fields())...).Result()
	if err != nil {
		return nil, err
	}
	return claimReply(v)
}

func (n *Node) readNode(ctx context.Context, id string) (*NodeRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, n.callTimeout())
	defer cancel()
	h, err := n.rdb.HGetAll(ctx, nodeKey(id)).Result()
	if err != nil {
		return nil, err
	}
	return nodeFrom(h), nil
}

// callTimeout bounds one registry call: a third of the TTL, at most 2 s,
// so a heartbeat never runs into the next.
func (n *Node) callTimeout() time.Duration {
	return min(n.getTTL()/3, 2*time.Second)
}

// Run starts the heartbeat and the registry worker; Claim comes first.
func (n *Node) Run() {
	n.wg.Add(2)
	go n.worker()
	go n.heartbeat()
}

// Close stops the heartbeat and removes this node's entries from the
// registry (best effort, within timeout), so the streams it originated are
// free at once rather than after a TTL; then closes the client.
func (n *Node) Close(timeout time.Duration) {
	if !n.closed.CompareAndSwap(false, true) {
		return
	}
	close(n.quit)
	n.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n.mu.Lock()
	paths := make([]string, 0, len(n.owned))
	for p := range n.owned {
		paths = append(paths, p)
	}
	n.mu.Unlock()
	pipe := n.rdb.Pipeline()
	for _, p := range paths {
		releaseScript.Eval(ctx, pipe, []string{streamKey(p)}, n.instance)
	}
	releaseScript.Eval(ctx, pipe, []string{nodeKey(n.ID())}, n.instance)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		n.log().Debug("cluster: could not remove this node's entries at shutdown; they expire after ttl", "err", err)
	}
	n.rdb.Close()
}
