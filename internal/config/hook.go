package config

// Hook is ZLMediaKit's [hook] section: the web hooks' switch, timing and URLs.
type Hook struct {
	Enable               bool
	TimeoutSec           float64 // one HTTP call, connect to reply
	AliveInterval        float64 // seconds between on_server_keepalive calls
	Retry                int     // extra attempts of a failed notification hook
	RetryDelay           float64 // seconds between attempts
	AdminParams          string  // the query a hook server adds when it calls the API back (not sent by Berth)
	StreamChangedSchemas string  // "/"-separated schemas on_stream_changed reports; empty = all

	OnFlowReport, OnHTTPAccess, OnPlay, OnPublish, OnRecordMP4, OnRecordTS, OnRTSPAuth, OnRTSPRealm,
	OnShellLogin, OnStreamChanged, OnStreamNoneReader, OnStreamNotFound, OnServerStarted, OnServerExited,
	OnServerKeepalive, OnSendRTPStopped, OnRTPServerTimeout string
}

// HookNames lists the hooks with a URL key in [hook], in the file's order.
var HookNames = []string{"on_flow_report", "on_http_access", "on_play", "on_publish", "on_record_mp4",
	"on_record_ts", "on_rtsp_auth", "on_rtsp_realm", "on_shell_login", "on_stream_changed",
	"on_stream_none_reader", "on_stream_not_found", "on_server_started", "on_server_exited",
	"on_server_keepalive", "on_send_rtp_stopped", "on_rtp_server_timeout"}

// URL returns the configured URL of a hook by its key name, "" when unset or unknown.
func (h *Hook) URL(name string) string {
	if p := h.urlField(name); p != nil {
		return *p
	}
	return ""
}

func (h *Hook) urlField(name string) *string {
	switch name {
	case "on_flow_report":
		return &h.OnFlowReport
	case "on_http_access":
		return &h.OnHTTPAccess
	case "on_play":
		return &h.OnPlay
	case "on_publish":
		return &h.OnPublish
	case "on_record_mp4":
		return &h.OnRecordMP4
	case "on_record_ts":
		return &h.OnRecordTS
	case "on_rtsp_auth":
		return &h.OnRTSPAuth
	case "on_rtsp_realm":
		return &h.OnRTSPRealm
	case "on_shell_login":
		return &h.OnShellLogin
	case "on_stream_changed":
		return &h.OnStreamChanged
	case "on_stream_none_reader":
		return &h.OnStreamNoneReader
	case "on_stream_not_found":
		return &h.OnStreamNotFound
	case "on_server_started":
		return &h.OnServerStarted
	case "on_server_exited":
		return &h.OnServerExited
	case "on_server_keepalive":
		return &h.OnServerKeepalive
	case "on_send_rtp_stopped":
		return &h.OnSendRTPStopped
	case "on_rtp_server_timeout":
		return &h.OnRTPServerTimeout
	}
	return nil
}

func init() { keys = append(keys, hookKeys()...) }

// hookKeys is ZLMediaKit's [hook] section: one URL per hook and how calls are made.
func hookKeys() []key {
	ks := []key{
		boolKey("hook", "enable", "hook-enable", "1 = call the web hooks below; 0 = none is called and every decision takes its default (allow)",
			func(c *Config) *bool { return &c.Hook.Enable }),
		secondsKey("hook", "timeoutSec", "", "seconds one hook call may take, connect to reply; a decision hook that takes longer refuses", 0.1, 3600,
			func(c *Config) *float64 { return &c.Hook.TimeoutSec }),
		secondsKey("hook", "alive_interval", "", "seconds between on_server_keepalive calls", 0.1, 86400,
			func(c *Config) *float64 { return &c.Hook.AliveInterval }),
		intKey("hook", "retry", "", "extra attempts of a notification hook whose call failed", 0, 100,
			func(c *Config) *int { return &c.Hook.Retry }),
		secondsKey("hook", "retry_delay", "", "seconds between attempts of a failed hook call", 0, 3600,
			func(c *Config) *float64 { return &c.Hook.RetryDelay }),
		stringKey("hook", "admin_params", "", "query string a hook server may add to API calls back to this server (ZLMediaKit compatibility; Berth sends it nowhere)",
			func(c *Config) *string { return &c.Hook.AdminParams }),
		stringKey("hook", "stream_changed_schemas", "", "schemas (/-separated) whose register/unregister on_stream_changed reports; empty = every schema",
			func(c *Config) *string { return &c.Hook.StreamChangedSchemas }),
	}
	for _, name := range HookNames {
		ks = append(ks, stringKey("hook", name, "", "URL "+name+" is POSTed to; empty = not called",
			func(c *Config) *string { return c.Hook.urlField(name) }))
	}
	return ks
}
