package ident

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
)

// Health is Berth's /berth/health document.
type Health struct {
	Server   string `json:"server"`
	Version  string `json:"version"`
	Instance string `json:"instance"`
	PID      int    `json:"pid"`
}

// HTTPHealth asks addr for Berth's health path. A non-Berth HTTP server is
// identified by its Server header; a non-HTTP peer by its first bytes.
func HTTPHealth(ctx context.Context, addr string) (*Reply, *Health, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/berth/health", nil)
	if err != nil {
		return nil, nil, err
	}
	return HTTPGet(req)
}

// HTTPGet runs req without following redirects and reads at most 64 KiB of
// the body, looking for Berth's health document in it.
func HTTPGet(req *http.Request) (*Reply, *Health, error) {
	c := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, addr) }},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	r := &Reply{Identity: Identity{Protocol: "HTTP", Code: res.StatusCode,
		Status: res.Proto + " " + strconv.Itoa(res.StatusCode) + " " + http.StatusText(res.StatusCode),
		Server: res.Header.Get("Server"), Instance: res.Header.Get("X-Berth-Instance")}, Body: body,
		Header: map[string]string{}}
	for k, v := range res.Header {
		r.Header[k] = v[0]
	}
	var h Health
	if json.Unmarshal(body, &h) == nil && h.Server == "berth" {
		if r.Instance == "" {
			r.Instance = h.Instance
		}
		if r.Server == "" {
			r.Server = "Berth/" + h.Version
		}
		return r, &h, nil
	}
	return r, nil, nil
}

// HTTPHead sends a bare "GET / HTTP/1.0" on a new connection and reads the
// reply head, whatever it is: how a probe names a server that did not speak
// the protocol it was asked in (Python's http.server answers an RTSP
// request with a bare HTML page, but a GET with its Server header).
func HTTPHead(ctx context.Context, addr string) (*Reply, error) {
	conn, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("GET / HTTP/1.0\r\nHost: " + addr + "\r\nUser-Agent: berth-probe\r\n\r\n")); err != nil {
		return nil, err
	}
	return ReadReply(bufio.NewReaderSize(conn, 4096))
}
