// Package hooks calls ZLMediaKit-style web hooks: an HTTP POST of a JSON
// body to the URL configured for each event ([hook] on_publish=...), with
// the reply deciding what happens where the event is a question (may this
// client publish? which realm?).
//
// Decision hooks (on_publish, on_play, on_rtsp_realm, on_rtsp_auth) are
// asked synchronously by the protocol session that waits for them, bounded
// by timeoutSec; a hook server that cannot be asked refuses, as in
// ZLMediaKit. Notification hooks go through a bounded queue and a few
// workers, with retry and retry_delay, so the hub and the sessions never
// wait on the network.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/config"
)

// DefaultVhost is ZLMediaKit's name for "no virtual host".
const DefaultVhost = "__defaultVhost__"

// Client posts hooks. Create it with New; SetConfig applies a new [hook]
// section to the next call.
type Client struct {
	Log *slog.Logger
	// HTTP does the calls; nil = a client of its own (no proxy from the
	// environment: hook servers are usually next to the media server).
	HTTP *http.Client
	// Observe, if set, hears every call: hook name, result ("ok",
	// "refused", "error", "timeout") and how long it took (metrics).
	Observe func(hook, result string, d time.Duration)

	cfg   atomic.Pointer[settings]
	index atomic.Uint64 // hook_index: counts calls, as ZLMediaKit

	queue    chan *job
	stop     chan struct{}
	ctx      context.Context // cancelled by Close: calls in flight end
	cancel   context.CancelFunc
	stopOnce sync.Once
	wg       sync.WaitGroup
	dropped  atomic.Uint64
	pending  atomic.Int64 // notifications queued or running (Drain)
	dropLog  atomic.Int64

	streams sync.Map // *hub.Stream or path -> PublishOptions (observer.go)
	timers  sync.Map // *hub.Stream -> *time.Timer (none-reader)
}

// settings is one immutable snapshot of the config a call uses.
type settings struct {
	enable          bool
	timeout         time.Duration
	retry           int
	retryDelay      time.Duration
	aliveInterval   time.Duration
	urls            map[string]string
	serverID        string
	noneReaderDelay time.Duration
	flowThreshold   uint64 // bytes
	schemas         map[string]bool
	all             map[string]string // "section.key" -> value, for on_server_started
}

// queueSize bounds the notifications waiting for a worker; workers is how
// many calls run at once.
const (
	queueSize = 1024
	workers   = 4
)

// New returns a client for cfg; its workers run until Close.
func New(cfg *config.Config, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{Log: log, queue: make(chan *job, queueSize), stop: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.SetConfig(cfg)
	for range workers {
		c.wg.Add(1)
		go c.work()
	}
	return c
}

// SetConfig applies cfg's [hook] section and the [general] keys hooks use
// to the next call (hot reload).
func (c *Client) SetConfig(cfg *config.Config) {
	h := cfg.Hook
	st := &settings{
		enable:          h.Enable,
		timeout:         seconds(h.TimeoutSec, 10*time.Second),
		retry:           max(h.Retry, 0),
		retryDelay:      seconds(h.RetryDelay, 0),
		aliveInterval:   seconds(h.AliveInterval, 10*time.Second),
		urls:            map[string]string{},
		serverID:        cfg.General.MediaServerID,
		noneReaderDelay: time.Duration(cfg.General.StreamNoneReaderDelayMS) * time.Millisecond,
		flowThreshold:   uint64(max(cfg.General.FlowThreshold, 0)) * 1024,
		schemas:         map[string]bool{},
		all:             map[string]string{},
	}
	for _, name := range config.HookNames {
		if u := strings.TrimSpace(h.URL(name)); u != "" {
			st.urls[name] = u
		}
	}
	for _, s := range strings.Split(h.StreamChangedSchemas, "/") {
		if s = strings.TrimSpace(s); s != "" {
			st.schemas[s] = true
		}
	}
	for _, kv := range config.KeyValues(cfg) {
		st.all[kv[0]] = kv[1]
	}
	c.cfg.Store(st)
}

func seconds(s float64, def time.Duration) time.Duration {
	if s <= 0 {
		return def
	}
	return time.Duration(s * float64(time.Second))
}

func (c *Client) settings() *settings { return c.cfg.Load() }

// url is the URL of hook, "" when hooks are off or the hook has none.
func (st *settings) url(hook string) string {
	if !st.enable {
		return ""
	}
	return st.urls[hook]
}

// Enabled reports whether hook would be called now.
func (c *Client) Enabled(hook string) bool { return c.settings().url(hook) != "" }

// Call posts body to hook's URL once, bounded by timeoutSec, and returns
// the reply (decision hooks). ok is false when the hook is not configured:
// the caller takes the default of an unasked hook. A hook server that is
// down, slow or answers nonsense gives an error, logged here with the hook,
// URL and cause.
func (c *Client) Call(ctx context.Context, hook string, body map[string]any) (r Reply, ok bool, err error) {
	st := c.settings()
	u := st.url(hook)
	if u == "" {
		return nil, false, nil
	}
	r, _, err = c.post(ctx, st, hook, u, body)
	if err != nil {
		var refused *RefusedError
		if !errors.As(err, &refused) {
			c.Log.Warn("web hook failed; its default on failure applies (refuse)", "hook", hook, "url", u, "err", err)
		}
	}
	return r, true, err
}

// Notify queues body for hook (notification hooks); then, if set, runs on a
// worker with the reply once a call succeeds. It never blocks: a full queue
// drops the call with a rate-limited warning.
func (c *Client) Notify(hook string, body map[string]any, then func(Reply)) {
	st := c.settings()
	u := st.url(hook)
	if u == "" {
		return
	}
	c.enqueue(&job{hook: hook, url: u, body: body, left: st.retry, then: then})
}

type job struct {
	hook, url string
	body      map[string]any
	left      int // retries left
	then      func(Reply)
}

func (c *Client) enqueue(j *job) bool {
	select {
	case <-c.stop:
		return false
	default:
	}
	c.pending.Add(1)
	select {
	case c.queue <- j:
		return true
	default:
		c.pending.Add(-1)
		n := c.dropped.Add(1)
		now := time.Now().UnixNano()
		if last := c.dropLog.Load(); now-last > int64(5*time.Second) && c.dropLog.CompareAndSwap(last, now) {
			c.Log.Warn("web hook queue is full; notification dropped (the hook server is slower than the events)",
				"hook", j.hook, "url", j.url, "dropped_total", n, "queue", queueSize,
				"fix", "make the hook server answer faster, or lower [hook] timeoutSec")
		}
		return false
	}
}

func (c *Client) work() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case j := <-c.queue:
			c.run(j)
			c.pending.Add(-1)
		}
	}
}

func (c *Client) run(j *job) {
	st := c.settings()
	r, retry, err := c.post(c.ctx, st, j.hook, j.url, j.body)
	if err == nil {
		if j.then != nil {
			j.then(r)
		}
		return
	}
	select {
	case <-c.stop: // shutting down: the call was cancelled, not failed
		return
	default:
	}
	if retry && j.left > 0 {
		c.Log.Warn("web hook failed; retrying", "hook", j.hook, "url", j.url, "err", err,
			"retries_left", j.left, "in", st.retryDelay.String())
		j.left--
		time.AfterFunc(st.retryDelay, func() { c.enqueue(j) })
		return
	}
	c.Log.Warn("web hook failed", "hook", j.hook, "url", j.url, "err", err)
}

// post makes one call: the body gets mediaServerId and hook_index, as in
// ZLMediaKit. retry says whether another attempt may succeed.
func (c *Client) post(ctx context.Context, st *settings, hook, u string, body map[string]any) (Reply, bool, error) {
	full := make(map[string]any, len(body)+2)
	for k, v := range body {
		full[k] = v
	}
	full["mediaServerId"] = st.serverID
	full["hook_index"] = c.index.Add(1) - 1
	data, err := json.Marshal(full)
	if err != nil {
		return nil, false, fmt.Errorf("cannot encode the %s body: %w", hook, err)
	}
	ctx, cancel := context.WithTimeout(ctx, st.timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		c.observe(hook, "error", start)
		return nil, false, fmt.Errorf("hook URL %q: %w", u, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-VHOST", DefaultVhost)
	res, err := c.httpClient().Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			c.observe(hook, "timeout", start)
			return nil, true, fmt.Errorf("no reply within timeoutSec (%s): %w", st.timeout, err)
		}
		c.observe(hook, "error", start)
		return nil, true, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		result := "error"
		if ctx.Err() == context.DeadlineExceeded {
			result = "timeout"
		}
		c.observe(hook, result, start)
		return nil, true, fmt.Errorf("reading the reply: %w", err)
	}
	r, retry, err := ParseReply(hook, res.StatusCode, raw)
	var refused *RefusedError
	switch {
	case err == nil:
		c.observe(hook, "ok", start)
	case errors.As(err, &refused):
		c.observe(hook, "refused", start)
	default:
		c.observe(hook, "error", start)
	}
	return r, retry, err
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConnsPerHost: workers * 2,
	IdleConnTimeout:     90 * time.Second,
}}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

func (c *Client) observe(hook, result string, start time.Time) {
	if c.Observe != nil {
		c.Observe(hook, result, time.Since(start))
	}
}

// Dropped counts notifications dropped because the queue was full.
func (c *Client) Dropped() uint64 { return c.dropped.Load() }

// Drain waits until no notification is queued or running, or ctx ends
// (shutdown: the last on_stream_changed and on_flow_report get out). A
// retry waiting for its delay is not waited for.
func (c *Client) Drain(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for c.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// Close stops the workers; queued notifications that have not started are
// dropped, calls in flight are cancelled.
func (c *Client) Close() {
	c.stopOnce.Do(func() { close(c.stop); c.cancel() })
	c.wg.Wait()
}

// splitPath turns a hub path into ZLMediaKit's app and stream.
func splitPath(path string) (app, stream string) {
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return "", path
}

// peer splits ip:port for the ip and port fields of a body.
func peer(remote string) (string, int) {
	host, port, err := net.SplitHostPort(remote)
	if err != nil {
		return remote, 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}
