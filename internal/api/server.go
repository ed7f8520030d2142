package api

import (
	"net/http"
	"runtime"
	"runtime/debug"
)

// getApiList lists every call's path, sorted as ZLMediaKit's map of them.
func (h *Handler) getApiList(_ *http.Request, _ params) (map[string]any, error) {
	return map[string]any{"data": apiPaths}, nil
}

// version answers ZLMediaKit's fields from what Go recorded in the binary:
// commitHash is the VCS revision (with -dirty for a modified tree),
// buildTime the commit's time (Go records no build time), branchName ""
// (Go records none). Berth's own: server and version.
func (h *Handler) version(_ *http.Request, _ params) (map[string]any, error) {
	data := map[string]any{"buildTime": "", "branchName": "", "commitHash": "", "server": "berth",
		"version": h.Version, "goVersion": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				data["commitHash"] = s.Value
			case "vcs.time":
				data["buildTime"] = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && data["commitHash"] != "" {
			data["commitHash"] = data["commitHash"].(string) + "-dirty"
		}
	}
	return map[string]any{"data": data}, nil
}

func (h *Handler) configurer() (Configurer, error) {
	if h.Config == nil {
		return nil, fail(CodeOtherFailed, "this server cannot read or change its config through the API (no configurer is wired in)")
	}
	return h.Config, nil
}

// getServerConfig: {"data":[{"section.key":"value",...}]}, one object in
// an array, as ZLMediaKit answers.
func (h *Handler) getServerConfig(_ *http.Request, _ params) (map[string]any, error) {
	c, err := h.configurer()
	if err != nil {
		return nil, err
	}
	return map[string]any{"data": []map[string]string{c.ServerConfig()}}, nil
}

// setServerConfig applies every "section.key" parameter (secret aside) and
// answers how many values changed.
func (h *Handler) setServerConfig(r *http.Request, p params) (map[string]any, error) {
	c, err := h.configurer()
	if err != nil {
		return nil, err
	}
	kv := make(map[string]string, len(p))
	for k, v := range p {
		if k != "secret" {
			kv[k] = v
		}
	}
	changed, err := c.SetServerConfig(kv)
	if err != nil {
		return nil, fail(CodeOtherFailed, "%v", err)
	}
	if changed > 0 {
		h.log().Info("config changed by the API", "changed", changed, "by", r.RemoteAddr)
	}
	return map[string]any{"changed": changed}, nil
}

func (h *Handler) restartServer(r *http.Request, _ params) (map[string]any, error) {
	c, err := h.configurer()
	if err != nil {
		return nil, err
	}
	if err := c.RestartServer(); err != nil {
		return nil, fail(CodeOtherFailed, "%v", err)
	}
	h.log().Info("restart asked by the API", "by", r.RemoteAddr)
	return map[string]any{"msg": "Berth will restart in 1 second"}, nil
}

// getStatistic answers ZLMediaKit's object counts that Berth has honestly:
// MediaSource (a stream in each schema), MultiMediaSourceMuxer (streams),
// TcpServer, TcpSession, UdpServer (RTP ports), UdpSession (RTP streams
// over UDP), TcpClient (0: Berth opens no outgoing connections yet) and
// Socket (their sum). Frame, Buffer and packet counts are not given:
// Berth's rings hold frames, not those objects.
func (h *Handler) getStatistic(_ *http.Request, _ params) (map[string]any, error) {
	streams := 0
	if h.Hub != nil {
		streams = len(h.Hub.Streams())
	}
	tcpServers, tcpSessions := 0, 0
	if h.Sessions != nil {
		tcpServers, tcpSessions = h.Sessions.Listeners(), h.Sessions.Len()
	}
	udpServers, udpSessions := 0, 0
	if h.RTP != nil {
		udpServers = len(h.RTP.Ports())
		for _, ss := range h.RTP.Stats().Sessions {
			if ss.Transport == "udp" {
				udpSessions++
			}
		}
	}
	data := map[string]any{
		"MediaSource":           streams * len(h.schemas()),
		"MultiMediaSourceMuxer": streams,
		"TcpServer":             tcpServers,
		"TcpSession":            tcpSessions,
		"UdpServer":             udpServers,
		"UdpSession":            udpSessions,
		"TcpClient":             0,
		"Socket":                tcpServers + tcpSessions + udpServers,
	}
	return map[string]any{"data": data}, nil
}

// getThreadsLoad has one entry per GOMAXPROCS (Go's runtime runs
// goroutines on that many threads, as ZLMediaKit its poller threads): load
// is the process's CPU use over the last second in percent of those CPUs,
// delay the mean time (ms) a runnable goroutine waited to run over the
// same second. Go does not tell one thread's share, so every entry is the
// process's.
func (h *Handler) getThreadsLoad(_ *http.Request, _ params) (map[string]any, error) {
	h.sampler.use(h.Hub)
	load, delay := h.sampler.threadsLoad()
	n := runtime.GOMAXPROCS(0)
	data := make([]map[string]any, n)
	for i := range data {
		data[i] = map[string]any{"load": load, "delay": delay}
	}
	return map[string]any{"data": data}, nil
}

// getWorkThreadsLoad is getThreadsLoad: Berth has no separate pool of
// background threads (hooks and other slow work run on goroutines of the
// same scheduler).
func (h *Handler) getWorkThreadsLoad(r *http.Request, p params) (map[string]any, error) {
	return h.getThreadsLoad(r, p)
}
