package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metricsHTTP fetches /metrics on a new connection each time, so that no
// idle connection of the sampler's is among the open files it counts.
var metricsHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// scrapeMetrics reads the unlabelled samples of a Prometheus text page
// (Berth's /metrics): go_goroutines, process_open_fds and the like.
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	res, err := metricsHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w (is Berth running, with [metrics] enable=1?)", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s; set [metrics] enable=1 and allow this address", url, res.Status)
	}
	return parseMetrics(res.Body)
}

// parseMetrics keeps the samples without labels of the Prometheus text
// format: "name value".
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.Fields(val)[0], 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
