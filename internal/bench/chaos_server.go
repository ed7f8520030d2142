package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"
)

// What the campaign asks of the server under test: is it alive, what does
// it hold, and a few ports of its own from openRtpServer.

var chaosHTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// alive reports the process exists (with -pid) and /berth/health answers.
func (c *chaosRun) alive() bool {
	if c.cfg.PID > 0 {
		p, err := os.FindProcess(c.cfg.PID)
		if err != nil || p.Signal(syscall.Signal(0)) != nil {
			return false
		}
	}
	res, err := chaosHTTP.Get("http://" + c.cfg.HTTP + "/berth/health")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// resources reads the server's goroutines from /metrics (the Go collector),
// and its files and memory from /proc/PID with -pid, else from /metrics
// (the process collector).
func (c *chaosRun) resources() (ChaosResources, error) {
	var r ChaosResources
	m, err := scrapeMetrics(context.Background(), "http://"+c.cfg.HTTP+"/metrics")
	if err != nil && c.cfg.PID == 0 {
		return r, fmt.Errorf("bench chaos: the server's goroutines, files and memory: %w", err)
	}
	r.Goroutines = int(m["go_goroutines"])
	r.FDs = int(m["process_open_fds"])
	r.RSSKiB = int64(m["process_resident_memory_bytes"] / 1024)
	if c.cfg.PID > 0 {
		s, err := ReadProc(c.cfg.PID)
		if err != nil {
			return r, err
		}
		r.RSSKiB = s.RSSKiB
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.cfg.PID))
		if err != nil {
			return r, fmt.Errorf("counting the server's open files: %w", err)
		}
		r.FDs = len(fds)
	}
	return r, nil
}

// metrics reads the unlabelled samples of the Prometheus text format.
// api calls /index/api/NAME with the secret and returns the JSON reply.
func (c *chaosRun) api(name string, q url.Values) (map[string]any, error) {
	q.Set("secret", c.cfg.Secret)
	res, err := chaosHTTP.Get("http://" + c.cfg.HTTP + "/index/api/" + name + "?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if code, _ := out["code"].(float64); code != 0 {
		return out, fmt.Errorf("%s: code %v: %v", name, out["code"], out["msg"])
	}
	return out, nil
}

// chaosRTPStreams are the openRtpServer stream ids the campaign opens (and
// closes at the end); junk goes to their ports over UDP and TCP.
var chaosRTPStreams = []string{"chaos_rtp0", "chaos_rtp1"}

// chaosAPIRTPStreams is how many stream ids the API inputs may open
// ports for with openRtpServer.
const chaosAPIRTPStreams = 8

func (c *chaosRun) openRTPServers() error {
	host, _, err := net.SplitHostPort(c.cfg.HTTP)
	if err != nil {
		return err
	}
	c.rtpHost = host
	for _, id := range chaosRTPStreams {
		c.api("closeRtpServer", url.Values{"stream_id": {id}}) // a previous run's
		out, err := c.api("openRtpServer", url.Values{"port": {"0"}, "tcp_mode": {"1"}, "stream_id": {id}})
		if err != nil {
			return err
		}
		if p, ok := out["port"].(float64); ok {
			c.rtpPorts = append(c.rtpPorts, int(p))
		}
	}
	return nil
}

// closeRTPServers closes the campaign's ports and those its API inputs
// opened (stream ids chaos_api0..7).
func (c *chaosRun) closeRTPServers() {
	ids := append([]string(nil), chaosRTPStreams...)
	for i := range chaosAPIRTPStreams {
		ids = append(ids, "chaos_api"+strconv.Itoa(i))
	}
	for _, id := range ids {
		c.api("closeRtpServer", url.Values{"stream_id": {id}})
	}
}
