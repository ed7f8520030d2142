package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/berthmedia/berth/internal/proxy"
)

// The registry's keys. Each is a Redis hash (HGETALL in redis-cli shows it
// whole) with a TTL the owner's heartbeat refreshes; docs/cluster.md lists
// the fields.
const (
	keyPrefix    = "berth:"
	nodePrefix   = keyPrefix + "node:"   // berth:node:<node_id>
	streamPrefix = keyPrefix + "stream:" // berth:stream:<app/stream>
)

func nodeKey(id string) string     { return nodePrefix + id }
func streamKey(path string) string { return streamPrefix + path }

// claimScript sets a hash and its TTL unless another process owns it: the
// owner is the "instance" field, a token new at every start, so a node
// restarted with the same node_id is told apart from the one still running.
// It answers {1, ""} when the caller owns the key now, {0, node, beat} when
// another instance does. One script, so two nodes that claim at once cannot
// both win (Redis runs a script atomically).
var claimScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'instance')
if cur and cur ~= ARGV[1] then
  return {0, redis.call('HGET', KEYS[1], 'node') or '', redis.call('HGET', KEYS[1], 'beat') or ''}
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, ''}
`)

// releaseScript deletes a key only if the caller still owns it: a stream
// that ended here must not remove the entry of a node that took it over.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'instance') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// newClient opens a go-redis client for url with short deadlines: every
// registry call has one, so Redis being slow or gone never holds up a
// stream (the callers run off the packet path and say so once).
func newClient(rawURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("[cluster] redis %q: %w", proxy.Redact(rawURL), err)
	}
	opt.DialTimeout = time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1 // no hidden retries: the heartbeat is the retry
	opt.PoolSize = 4
	opt.Protocol = 2
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClient(opt), nil
}

// NodeRecord is one node as the registry holds it.
type NodeRecord struct {
	ID       string    `json:"node_id"`
	Instance string    `json:"-"`
	RTSP     string    `json:"rtsp,omitempty"` // base URLs other nodes reach it at
	RTMP     string    `json:"rtmp,omitempty"`
	HTTP     string    `json:"http,omitempty"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Beat     time.Time `json:"heartbeat"`
	Load     Load      `json:"load"`
}

// Load is what a node reports of itself at each heartbeat.
type Load struct {
	CPU       int    `json:"cpu_percent"` // of all CPUs, over the last heartbeat interval
	Readers   int    `json:"readers"`     // players of every stream
	EgressBps uint64 `json:"egress_bps"`  // media bits per second handed to players
	Streams   int    `json:"streams"`     // streams this node originates
	Edges     int    `json:"edges"`       // streams it pulls from other nodes
}

// StreamRecord says which node originates a path.
type StreamRecord struct {
	Path      string    `json:"path"`
	Node      string    `json:"node_id"`
	Instance  string    `json:"-"`
	RTSP      string    `json:"rtsp,omitempty"` // the play URLs on the origin
	RTMP      string    `json:"rtmp,omitempty"`
	Protocols []string  `json:"protocols"` // what the origin serves it in
	Publisher string    `json:"publisher"` // the publisher's protocol on the origin: rtsp, rtmp, pull...
	Started   time.Time `json:"started"`
}

// PullURL is the URL an edge pulls the stream from: RTSP where the origin
// serves it (passthrough of the publisher's RTP), RTMP otherwise.
func (r *StreamRecord) PullURL() string {
	if r.RTSP != "" {
		return r.RTSP
	}
	return r.RTMP
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func fromMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func (n *NodeRecord) fields() []any {
	return []any{"node", n.ID, "instance", n.Instance, "rtsp", n.RTSP, "rtmp", n.RTMP, "http", n.HTTP,
		"version", n.Version, "started", ms(n.Started), "beat", ms(n.Beat), "cpu", n.Load.CPU,
		"readers", n.Load.Readers, "egress_bps", n.Load.EgressBps, "streams", n.Load.Streams, "edges", n.Load.Edges}
}

func nodeFrom(h map[string]string) *NodeRecord {
	if len(h) == 0 {
		return nil
	}
	eg, _ := strconv.ParseUint(h["egress_bps"], 10, 64)
	return &NodeRecord{ID: h["node"], Instance: h["instance"], RTSP: h["rtsp"], RTMP: h["rtmp"], HTTP: h["http"],
		Version: h["version"], Started: fromMS(h["started"]), Beat: fromMS(h["beat"]),
		Load: Load{CPU: atoi(h["cpu"]), Readers: atoi(h["readers"]), EgressBps: eg, Streams: atoi(h["streams"]), Edges: atoi(h["edges"])}}
}

func (s *StreamRecord) fields() []any {
	return []any{"path", s.Path, "node", s.Node, "instance", s.Instance, "rtsp", s.RTSP, "rtmp", s.RTMP,
		"protocols", strings.Join(s.Protocols, ","), "publisher", s.Publisher, "started", ms(s.Started)}
}

func streamFrom(h map[string]string) *StreamRecord {
	if len(h) == 0 {
		return nil
	}
	var protos []string
	if h["protocols"] != "" {
		protos = strings.Split(h["protocols"], ",")
	}
	return &StreamRecord{Path: h["path"], Node: h["node"], Instance: h["instance"], RTSP: h["rtsp"], RTMP: h["rtmp"],
		Protocols: protos, Publisher: h["publisher"], Started: fromMS(h["started"])}
}

// Owner is who holds a key another instance tried to claim.
type Owner struct {
	Node string
	Beat time.Time // the owner's last heartbeat, for node keys
}

// claimReply reads claimScript's answer: nil when the caller owns the key.
func claimReply(v any) (*Owner, error) {
	a, ok := v.([]any)
	if !ok || len(a) < 2 {
		return nil, fmt.Errorf("unexpected claim reply %v", v)
	}
	if n, _ := a[0].(int64); n == 1 {
		return nil, nil
	}
	o := &Owner{}
	o.Node, _ = a[1].(string)
	if len(a) > 2 {
		b, _ := a[2].(string)
		o.Beat = fromMS(b)
	}
	return o, nil
}

func ttlMS(ttl time.Duration) string { return strconv.FormatInt(ttl.Milliseconds(), 10) }

func claimArgs(instance string, ttl time.Duration, fields []any) []any {
	return append([]any{instance, ttlMS(ttl)}, fields...)
}

// lookup reads path's stream record; nil, nil when no node has it.
func lookup(ctx context.Context, c redis.Cmdable, path string) (*StreamRecord, error) {
	h, err := c.HGetAll(ctx, streamKey(path)).Result()
	if err != nil {
		return nil, err
	}
	return streamFrom(h), nil
}

// Snapshot is the whole registry: every live node and stream.
type Snapshot struct {
	Nodes   []NodeRecord   `json:"nodes"`
	Streams []StreamRecord `json:"streams"`
}

// ReadSnapshot scans the registry (berth cluster status, getClusterInfo,
// the status page). SCAN walks the keyspace in small steps, so a large
// registry never blocks Redis for the other nodes.
func ReadSnapshot(ctx context.Context, c redis.Cmdable) (Snapshot, error) {
	snap := Snapshot{Nodes: []NodeRecord{}, Streams: []StreamRecord{}}
	keys, err := scanKeys(ctx, c, keyPrefix+"*")
	if err != nil {
		return snap, err
	}
	if len(keys) == 0 {
		return snap, nil
	}
	pipe := c.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return snap, err
	}
	for i, k := range keys {
		h := cmds[i].Val()
		switch {
		case strings.HasPrefix(k, nodePrefix):
			if n := nodeFrom(h); n != nil {
				snap.Nodes = append(snap.Nodes, *n)
			}
		case strings.HasPrefix(k, streamPrefix):
			if s := streamFrom(h); s != nil {
				snap.Streams = append(snap.Streams, *s)
			}
		}
	}
	sort.Slice(snap.Nodes, func(i, j int) bool { return snap.Nodes[i].ID < snap.Nodes[j].ID })
	sort.Slice(snap.Streams, func(i, j int) bool { return snap.Streams[i].Path < snap.Streams[j].Path })
	return snap, nil
}

func scanKeys(ctx context.Context, c redis.Cmdable, match string) ([]string, error) {
	var out []string
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, match, 500).Result()
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}
