package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/berthmedia/berth/internal/testmedia"
)

// hlsViewer is one player: its own connection, and a cookie jar or none
// (then only the session in the URLs, or its connection, tells it apart).
type hlsViewer struct {
	c *http.Client
}

func newHLSViewer(jar bool) *hlsViewer {
	// One connection, waited for when busy: a viewer without cookies is
	// known by its address (hls.fallbackKey), and Go's transport may dial a
	// second connection for a request sent just before the first goes back
	// to its idle pool; that made a 201st viewer once in CI.
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
	if jar {
		c.Jar, _ = cookiejar.New(nil)
	}
	return &hlsViewer{c: c}
}

func (v *hlsViewer) get(u string) ([]byte, error) {
	res, err := v.c.Get(u)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != 200 {
		err = fmt.Errorf("%s: %s %s", u, res.Status, b)
	}
	return b, err
}

// play fetches the entry playlist (and the media playlist it names), the
// init segment and the newest segment, then reloads the entry playlist by
// its plain URL as players do.
func (v *hlsViewer) play(entry string) error {
	b, err := v.get(entry)
	if err != nil {
		return err
	}
	pl, err := playlist.Unmarshal(b)
	if err != nil {
		return err
	}
	media := entry
	if mv, ok := pl.(*playlist.Multivariant); ok {
		media = resolve(entry, mv.Variants[0].URI)
		if b, err = v.get(media); err != nil {
			return err
		}
		if pl, err = playlist.Unmarshal(b); err != nil {
			return err
		}
	}
	m, ok := pl.(*playlist.Media)
	if !ok || len(m.Segments) == 0 {
		return fmt.Errorf("%s: no media playlist with segments:\n%s", media, b)
	}
	if m.Map != nil {
		if _, err := v.get(resolve(media, m.Map.URI)); err != nil {
			return err
		}
	}
	if _, err := v.get(resolve(media, m.Segments[len(m.Segments)-1].URI)); err != nil {
		return err
	}
	_, err = v.get(entry)
	return err
}

// TestTwoHundredHLSViewersShareOneMuxer: 200 players of each HLS form (half
// with cookies, half without) are 200 readers each in the hub and
// getMediaList, served by one muxer per form.
func TestTwoHundredHLSViewersShareOneMuxer(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/many", "live/many")
	const n = 200
	base := "http://" + srv.Addr("http") + "/live/many/"
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	var viewers []*hlsViewer
	for _, entry := range []string{base + "hls.m3u8", base + "hls.fmp4.m3u8"} {
		for i := 0; i < n; i++ {
			v := newHLSViewer(i%2 == 0)
			viewers = append(viewers, v)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := v.play(entry); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	defer func() {
		for _, v := range viewers {
			v.c.CloseIdleConnections()
		}
	}()

	if got := srv.HLS().Started(); got != 2 {
		t.Errorf("%d HLS muxers started for %d viewers of each form, want 2 (one per form)", got, n)
	}
	if ms := srv.TSMuxers(); ms.Started() != 1 {
		t.Errorf("%d MPEG-TS muxers started under HLS-TS, want 1", ms.Started())
	}
	if got := srv.HLS().Viewers(); got != 2*n {
		t.Errorf("%d HLS viewers, want %d", got, 2*n)
	}
	rs := srv.Hub.Get("live/many").ReaderList()
	if a, b := countProto(rs, "hls"), countProto(rs, "hls.fmp4"); a != n || b != n {
		t.Errorf("hub readers: %d hls, %d hls.fmp4; want %d each", a, b, n)
	}
	_, body := getBody(t, "http://"+srv.Addr("http")+"/index/api/getMediaList?secret=s3cret&schema=hls&stream=many")
	if !strings.Contains(string(body), fmt.Sprintf(`"readerCount":%d`, n)) {
		t.Errorf("getMediaList schema=hls: %s", body)
	}
}
