// Package api is Berth's HTTP API under /index/api/, compatible with
// ZLMediaKit's: the same endpoint names, parameters (query string, form or
// JSON body), reply shapes ({"code":0,...}) and error codes, so the tools
// and GB28181 platforms written against ZLMediaKit work unchanged.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/record"
	"github.com/berthmedia/berth/internal/rtpproxy"
	"github.com/berthmedia/berth/internal/rtpsend"
	"github.com/berthmedia/berth/internal/sessions"
)

// ZLMediaKit's result codes (its WebApi.h ApiErr).
const (
	CodeSuccess     = 0
	CodeOtherFailed = -1   // the request was understood but failed
	CodeAuthFailed  = -100 // missing or wrong secret
	CodeInvalidArgs = -300 // a parameter is missing or invalid
	CodeException   = -400 // an internal error
	CodeNotFound    = -500 // no such endpoint or object
)

// Prefix is where the API is mounted.
const Prefix = "/index/api/"

// Handler serves the API. Mount it at Prefix. Its fields are set before
// the first call and not changed after.
type Handler struct {
	Hub    *hub.Hub
	Secret string           // [api] secret; every call must pass it
	RTP    *rtpproxy.Server // nil: the RTP endpoints answer that RTP is off
	Log    *slog.Logger
	// Schemas are the protocols every stream can be read in, one
	// getMediaList entry each as ZLMediaKit lists them; default rtsp, rtmp
	// (ZLMediaKit lists HTTP-FLV and WS-FLV under rtmp). Add "fmp4" where
	// HTTP-fMP4 is served, "ts" where HTTP-TS is.
	Schemas []string
	// Config reads and changes the server's config (getServerConfig,
	// setServerConfig, restartServer); nil: those calls answer that they
	// are not available.
	Config Configurer
	// Sessions lists the TCP connections (getAllSession, kick_session(s),
	// players' and origins' local addresses); nil: none are listed.
	Sessions *sessions.Registry
	// Version is Berth's version, for the version call.
	Version string
	// SendRTP runs startSendRtp's senders (sendrtp.go); nil: those calls
	// answer that RTP sending is off.
	SendRTP *rtpsend.Manager
	// Pushers runs addStreamPusherProxy & co (pusher.go); nil: those calls
	// answer that push-out is not available.
	Pushers Pushers
	// Proxies are the pull proxies (addStreamProxy, delStreamProxy,
	// listStreamProxy, getProxyInfo); nil: those calls answer that they
	// are not available.
	Proxies PullProxies
	// Record runs MP4 recordings (record.go); nil: those calls answer
	// that recording is off.
	Record *record.Manager
	// Playback plays recordings back as streams (seekRecordStamp,
	// setRecordSpeed); nil: those calls answer that it is off.
	Playback *record.Playback
	// Cluster reads the cluster registry (getClusterInfo); nil or ok
	// false: that call answers that clustering is off.
	Cluster func(ctx context.Context) (status any, ok bool)

	sampler sampler                // bytesSpeed and the threads' load, over the last seconds
	secret  atomic.Pointer[string] // set by SetSecret; nil: Secret
}

// SetSecret changes the secret calls must pass from the next call on (hot
// reload of [api] secret); it is safe while calls run.
func (h *Handler) SetSecret(secret string) { h.secret.Store(&secret) }

func (h *Handler) currentSecret() string {
	if s := h.secret.Load(); s != nil {
		return *s
	}
	return h.Secret
}

// Configurer is the server's config, as the API reads and changes it
// (implemented by internal/server).
type Configurer interface {
	// ServerConfig is every key as ZLMediaKit's getServerConfig lists it:
	// "section.key" -> value.
	ServerConfig() map[string]string
	// SetServerConfig applies kv live and rewrites the config file keeping
	// its comments; changed counts the keys whose value changed.
	SetServerConfig(kv map[string]string) (changed int, err error)
	// RestartServer restarts the server (after the reply is sent).
	RestartServer() error
}

// params are a call's arguments from the query string, a form body or a JSON body.
type params map[string]string

func (p params) int(name string, def int) (int, error) {
	v, ok := p[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("parameter %s=%q is not a number", name, v)
	}
	return n, nil
}

// require fails with ZLMediaKit's -300 unless every named parameter is
// present and not empty (its CHECK_ARGS).
func (p params) require(names ...string) error {
	var missed []string
	for _, n := range names {
		if p[n] == "" {
			missed = append(missed, n)
		}
	}
	if len(missed) > 0 {
		return fail(CodeInvalidArgs, "Required parameter missed: %s", strings.Join(missed, ", "))
	}
	return nil
}

// bool reads a flag as ZLMediaKit's clients send one: 1 or true.
func (p params) bool(name string) bool {
	switch strings.ToLower(p[name]) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// apiError is a failed call: the code and the message of the reply.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func fail(code int, format string, a ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, a...)}
}

type endpoint func(h *Handler, r *http.Request, p params) (map[string]any, error)

// endpoints are the calls by name, as ZLMediaKit registers them under
// /index/api/. Names are matched case-insensitively, as ZLMediaKit does.
var endpoints = map[string]endpoint{
	"getApiList":         (*Handler).getApiList,
	"version":            (*Handler).version,
	"getServerConfig":    (*Handler).getServerConfig,
	"setServerConfig":    (*Handler).setServerConfig,
	"restartServer":      (*Handler).restartServer,
	"getStatistic":       (*Handler).getStatistic,
	"getThreadsLoad":     (*Handler).getThreadsLoad,
	"getWorkThreadsLoad": (*Handler).getWorkThreadsLoad,
	"getMediaList":       (*Handler).getMediaList,
	"getMediaInfo":       (*Handler).getMediaInfo,
	"isMediaOnline":      (*Handler).isMediaOnline,
	"getMediaPlayerList": (*Handler).getMediaPlayerList,
	"close_stream":       (*Handler).closeStream,
	"close_streams":      (*Handler).closeStreams,
	"getAllSession":      (*Handler).getAllSession,
	"kick_session":       (*Handler).kickSession,
	"kick_sessions":      (*Handler).kickSessions,
	"openRtpServer":      (*Handler).openRtpServer,
	"closeRtpServer":     (*Handler).closeRtpServer,
	"listRtpServer":      (*Handler).listRtpServer,
	"getRtpInfo":         (*Handler).getRtpInfo,

	// Sending a stream as RTP (internal/rtpsend).
	"startSendRtp":        (*Handler).startSendRtp,
	"startSendRtpPassive": (*Handler).startSendRtpPassive,
	"stopSendRtp":         (*Handler).stopSendRtp,
	"listRtpSender":       (*Handler).listRtpSender,
	// Push-out (pusher.go).
	"addStreamPusherProxy":  (*Handler).addStreamPusherProxy,
	"delStreamPusherProxy":  (*Handler).delStreamPusherProxy,
	"listStreamPusherProxy": (*Handler).listStreamPusherProxy,
	"getProxyPusherInfo":    (*Handler).getProxyPusherInfo,
	// Pull proxies (proxy.go).
	"addStreamProxy":  (*Handler).addStreamProxy,
	"delStreamProxy":  (*Handler).delStreamProxy,
	"listStreamProxy": (*Handler).listStreamProxy,
	"getProxyInfo":    (*Handler).getProxyInfo,

	// Recording (internal/record).
	"startRecord":           (*Handler).startRecord,
	"stopRecord":            (*Handler).stopRecord,
	"isRecording":           (*Handler).isRecording,
	"seekRecordStamp":       (*Handler).seekRecordStamp,
	"setRecordSpeed":        (*Handler).setRecordSpeed,
	"getMp4RecordFile":      (*Handler).getMp4RecordFile,
	"deleteRecordDirectory": (*Handler).deleteRecordDirectory,

	// The cluster registry (cluster.go).
	"getClusterInfo": (*Handler).getClusterInfo,
}

var (
	endpointsByLower map[string]endpoint
	apiPaths         []string // getApiList's answer
)

// init fills the lookups from endpoints (an initializer could not: getApiList
// in endpoints reads apiPaths).
func init() {
	endpointsByLower = make(map[string]endpoint, len(endpoints))
	for name, ep := range endpoints {
		endpointsByLower[strings.ToLower(name)] = ep
		apiPaths = append(apiPaths, Prefix+name)
	}
	// Sorted as ZLMediaKit's case-insensitive map of them.
	slices.SortFunc(apiPaths, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// ServeHTTP answers every call with HTTP 200 and a JSON body, as
// ZLMediaKit does; the outcome is in "code".
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Web consoles call the API from their own origin, as they do with
	// ZLMediaKit (allow_cross_domains=1 by default); the secret still guards it.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	ep := endpointsByLower[strings.ToLower(name)]
	if ep == nil {
		h.notFound(w, r)
		return
	}
	p, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"code": CodeInvalidArgs, "msg": err.Error()})
		return
	}
	if err := h.checkSecret(p); err != nil {
		h.log().Warn("API call refused", "endpoint", name, "remote", r.RemoteAddr, "reason", err.msg)
		writeJSON(w, http.StatusOK, map[string]any{"code": err.code, "msg": err.msg})
		return
	}
	reply, err := h.call(ep, r, p)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{code: CodeException, msg: err.Error()}
		}
		h.log().Info("API call failed", "endpoint", name, "remote", r.RemoteAddr, "code", ae.code, "msg", ae.msg)
		writeJSON(w, http.StatusOK, map[string]any{"code": ae.code, "msg": ae.msg})
		return
	}
	if reply == nil {
		reply = map[string]any{}
	}
	if _, set := reply["code"]; !set { // close_stream answers -1 with its fields
		reply["code"] = CodeSuccess
	}
	writeJSON(w, http.StatusOK, reply)
}

// call runs an endpoint, turning a panic into an error reply.
func (h *Handler) call(ep endpoint, r *http.Request, p params) (reply map[string]any, err error) {
	defer func() {
		if v := recover(); v != nil {
			h.log().Error("API endpoint panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
			err = fail(CodeException, "internal error: %v", v)
		}
	}()
	return ep(h, r, p)
}

// notFound answers a path under /index/api/ that is no call as ZLMediaKit
// does: it does not take the request as an API call, so its HTTP server
// answers 404 with the page of [http] notFound (no JSON, no secret check).
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.log().Info("API call to an unknown path: answered 404", "path", r.URL.Path, "remote", r.RemoteAddr,
		"fix", "see "+Prefix+"getApiList for the calls this server has")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, notFoundPage(h.Version))
}

// notFoundPage is ZLMediaKit's default [http] notFound page, with Berth's name.
func notFoundPage(version string) string {
	name := "Berth"
	if version != "" {
		name += "/" + version
	}
	return `<html><head><title>404 Not Found</title></head><body bgcolor="white"><center><h1>您访问的资源不存在！</h1></center><hr><center>` +
		name + `</center></body></html>`
}

// checkSecret is ZLMediaKit's CHECK_SECRET as of 2023 on: every call passes
// secret=, from any address, 127.0.0.1 included (before, calls from
// 127.0.0.1 needed none).
func (h *Handler) checkSecret(p params) *apiError {
	secret := h.currentSecret()
	if secret == "" {
		return fail(CodeAuthFailed, "the API is disabled: set [api] secret in the config (or --api-secret) and pass it as secret=")
	}
	got, ok := p["secret"]
	if !ok || got == "" {
		return fail(CodeAuthFailed, "missing secret: pass secret=<[api] secret> with every call")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
		return fail(CodeAuthFailed, "incorrect secret: it must equal [api] secret in the server's config")
	}
	return nil
}

const maxBody = 1 << 20

// readParams reads a call's parameters from its body, then its query
// string, which wins over the body as in ZLMediaKit's getAllArgs.
func readParams(r *http.Request) (params, error) {
	p := params{}
	if err := readBody(r, p); err != nil {
		return nil, err
	}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			p[k] = v[0]
		}
	}
	return p, nil
}

func readBody(r *http.Request, p params) error {
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			return err
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("the JSON body is invalid: %v", err)
		}
		for k, v := range m {
			switch x := v.(type) {
			case string:
				p[k] = x
			case float64:
				p[k] = strconv.FormatFloat(x, 'f', -1, 64)
			case bool:
				p[k] = "0"
				if x {
					p[k] = "1"
				}
			}
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			return fmt.Errorf("the form body is invalid: %v", err)
		}
		for k, v := range r.PostForm {
			if len(v) > 0 {
				p[k] = v[0]
			}
		}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // messages quote "<[api] secret>"; keep them readable
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"code":-400,"msg":"reply could not be encoded"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
