package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/berthmedia/berth/internal/proxy"
)

// PullProxies are the server's pull proxies (implemented by
// *proxy.Manager): addStreamProxy and the calls around it.
type PullProxies interface {
	Add(spec proxy.Spec) (string, error)
	Delete(key string) bool
	Get(key string) (proxy.Info, bool)
	List() []proxy.Info
}

func (h *Handler) proxies() (PullProxies, error) {
	if h.Proxies == nil {
		return nil, fail(CodeOtherFailed, "pull proxies are not available on this server (none is wired in)")
	}
	return h.Proxies, nil
}

// addStreamProxy pulls url into vhost/app/stream, as ZLMediaKit does:
// retry_count (-1, the default, retries forever), rtp_type (0 TCP, 1 UDP,
// 2 multicast), timeout_sec; auto_close=1 removes the
// pull after its last reader leaves (streamNoneReaderDelayMS). The enable_*
// and *_demand switches are accepted: Berth serves every protocol on demand
// anyway. Reply {"code":0,"data":{"key":"__defaultVhost__/app/stream"}}.
func (h *Handler) addStreamProxy(r *http.Request, p params) (map[string]any, error) {
	px, err := h.proxies()
	if err != nil {
		return nil, err
	}
	if err := p.require("app", "stream", "url"); err != nil {
		return nil, err
	}
	retry, err := p.int("retry_count", -1)
	if err != nil {
		return nil, fail(CodeInvalidArgs, "%v", err)
	}
	rtpType, err := p.int("rtp_type", 0)
	if err != nil {
		return nil, fail(CodeInvalidArgs, "%v", err)
	}
	timeout := 10 * time.Second
	if v := p["timeout_sec"]; v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 600 {
			return nil, fail(CodeInvalidArgs, "timeout_sec=%q is not a number of seconds from 0 to 600", v)
		}
		timeout = time.Duration(f * float64(time.Second))
	}
	spec := proxy.Spec{Path: p["app"] + "/" + p["stream"], URL: p["url"], RetryCount: retry,
		Transport: proxy.Transport(rtpType), Timeout: timeout, AutoClose: p.bool("auto_close")}
	key, err := px.Add(spec)
	if err != nil {
		switch {
		case errors.Is(err, proxy.ErrExists):
			return nil, fail(CodeOtherFailed, "This stream already exists: %v", err)
		case errors.Is(err, proxy.ErrBadURL), errors.Is(err, proxy.ErrBadRTPType):
			h.log().Warn("addStreamProxy refused", "err", err, "by", r.RemoteAddr)
			return nil, fail(CodeInvalidArgs, "%v", err)
		}
		return nil, fail(CodeOtherFailed, "%v", err)
	}
	h.log().Info("addStreamProxy", "key", key, "url", proxy.Redact(spec.URL), "by", r.RemoteAddr)
	return map[string]any{"data": map[string]any{"key": key}}, nil
}

// delStreamProxy stops and removes the pull with key; its stream ends.
// Reply {"code":0,"data":{"flag":true}} (false when there was none).
func (h *Handler) delStreamProxy(_ *http.Request, p params) (map[string]any, error) {
	px, err := h.proxies()
	if err != nil {
		return nil, err
	}
	if err := p.require("key"); err != nil {
		return nil, err
	}
	return map[string]any{"data": map[string]any{"flag": px.Delete(p["key"])}}, nil
}

// listStreamProxy lists every pull with its state.
func (h *Handler) listStreamProxy(_ *http.Request, _ params) (map[string]any, error) {
	px, err := h.proxies()
	if err != nil {
		return nil, err
	}
	data := []map[string]any{}
	for _, in := range px.List() {
		data = append(data, h.proxyJSON(in))
	}
	return map[string]any{"data": data}, nil
}

// getProxyInfo is one pull's state by key.
func (h *Handler) getProxyInfo(_ *http.Request, p params) (map[string]any, error) {
	px, err := h.proxies()
	if err != nil {
		return nil, err
	}
	if err := p.require("key"); err != nil {
		return nil, err
	}
	in, ok := px.Get(p["key"])
	if !ok {
		return nil, fail(CodeNotFound, "no pull proxy has key %q (listStreamProxy lists them)", p["key"])
	}
	return map[string]any{"data": h.proxyJSON(in)}, nil
}

// proxyJSON is a pull as ZLMediaKit describes one (key, url, status,
// liveSecs, rePullCount, totalReaderCount, src) plus Berth's state words.
func (h *Handler) proxyJSON(in proxy.Info) map[string]any {
	app, stream := splitPath(in.Path)
	status, live := -1, int64(0)
	if in.State == proxy.StateLive {
		status, live = 0, int64(time.Since(in.LiveSince).Seconds())
	}
	readers := 0
	if s := h.Hub.Get(in.Path); s != nil {
		readers = s.Readers()
	}
	return map[string]any{
		"key": in.Key, "url": in.URL, "status": status, "liveSecs": live, "rePullCount": in.Retries,
		"totalReaderCount": readers, "src": map[string]any{"vhost": DefaultVhost, "app": app, "stream": stream},
		"state": in.State.String(), "statusStr": in.Summary(), "cause": in.Cause, "on_demand": in.OnDemand,
		"retry_count": in.Spec.RetryCount, "rtp_type": int(in.Spec.Transport), "timeout_sec": in.Spec.Timeout.Seconds(),
		"bytes": in.Bytes,
	}
}
