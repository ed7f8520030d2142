package proxy

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/hub"
)

// httpStatusError is an HTTP source's answer other than 200.
type httpStatusError struct {
	Code int
	URL  string
}

func (e *httpStatusError) Error() string {
	switch e.Code {
	case http.StatusNotFound:
		return "404: the source has no stream at this path (not published yet, or a typo)"
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("%d: the source refused this request (check the URL's credentials or token)", e.Code)
	}
	return fmt.Sprintf("%d %s from the source", e.Code, http.StatusText(e.Code))
}

// pullFLV reads an HTTP-FLV source into a KindAU stream.
func (p *Proxy) pullFLV(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.src, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "berth-proxy")
	client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: p.spec.Timeout, Proxy: http.ProxyFromEnvironment}}
	defer client.CloseIdleConnections()
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return &httpStatusError{Code: res.StatusCode, URL: Redact(p.src)}
	}
	// A body that stalls for Timeout ends the session, as a read timeout.
	idle := time.AfterFunc(p.spec.Timeout, cancel)
	defer idle.Stop()
	r, err := flv.NewReader(bufio.NewReaderSize(res.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("reading the FLV header: %w", err)
	}
	var done <-chan struct{}
	ended := make(chan struct{})
	defer close(ended)
	in := newFLVIn(p.out, func(tracks []*hub.Track) error {
		d, err := p.out.begin(hub.KindAU, tracks, nil)
		if err != nil {
			return err
		}
		done = d
		go func() {
			select {
			case <-d:
				cancel()
			case <-ended:
			}
		}()
		return nil
	})
	for {
		t, err := r.ReadTag()
		if err != nil {
			if done != nil && isClosed(done) {
				return errStreamClosed
			}
			if ctx.Err() != nil {
				return fmt.Errorf("the source sent nothing for %s, or the pull stopped: %w", p.spec.Timeout, err)
			}
			return err
		}
		idle.Reset(p.spec.Timeout)
		if err := in.tag(t.Type, t.TS, t.Body); err != nil {
			return err
		}
	}
}
