package cluster

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/proxy"
)

var templateCases = []struct {
	tmpl, app, stream, want string
}{
	// ZLMediaKit's printf form: app, then stream.
	{"rtsp://10.0.0.1:554/%s/%s", "live", "cam1", "rtsp://10.0.0.1:554/live/cam1"},
	{"rtmp://10.0.0.1/%s/%s", "live", "cam1", "rtmp://10.0.0.1/live/cam1"},
	{"http://10.0.0.1:80/%s/%s/hls.m3u8", "live", "a", "http://10.0.0.1:80/live/a/hls.m3u8"},
	{"http://o/%s/%s.live.flv?k=100%%", "live", "a", "http://o/live/a.live.flv?k=100%"},
	// Named and numbered forms.
	{"rtsp://origin/$app/$stream", "live", "cam1", "rtsp://origin/live/cam1"},
	{"rtmp://origin/${app}/${stream}_hd", "live", "cam1", "rtmp://origin/live/cam1_hd"},
	{"rtmp://origin/$1/$2", "live", "cam1", "rtmp://origin/live/cam1"},
	{"rtsp://origin/relay/$stream", "live", "cam1", "rtsp://origin/relay/cam1"},
	{"rtsp://origin/$app/$stream?vhost=$vhost", "a", "b", "rtsp://origin/a/b?vhost=__defaultVhost__"},
	// A '$' or '%' that is no placeholder stays (passwords, escapes).
	{"rtsp://admin:pa$word@origin/$app/$stream", "a", "b", "rtsp://admin:pa$word@origin/a/b"},
	{"rtsp://admin:p%40ss@origin/$app/$stream", "a", "b", "rtsp://admin:p%40ss@origin/a/b"},
	{"rtsp://admin:x$$1@origin/$app/$stream", "a", "b", "rtsp://admin:x$1@origin/a/b"},
	{"rtsp://origin/$application/$stream", "a", "b", "rtsp://origin/$application/b"},
	// Names come from players: everything but unreserved bytes is escaped.
	{"rtsp://origin/$app/$stream", "live", "a b?x=1#f", "rtsp://origin/live/a%20b%3Fx%3D1%23f"},
	{"rtsp://origin/$app/$stream", "record", "live/s/2026-12-07/10-00-00.mp4", "rtsp://origin/record/live/s/2026-12-07/10-00-00.mp4"},
	{"rtsp://origin/$app/$stream", "a/b", "c", "rtsp://origin/a%2Fb/c"},
	{"rtsp://origin/$app/$stream", "live", "u@evil", "rtsp://origin/live/u%40evil"},
	{"srt://origin:9000?streamid=#!::r=$app/$stream,m=request", "live", "a,m=publish", "srt://origin:9000?streamid=#!::r=live/a%2Cm%3Dpublish,m=request"},
	{"rtsp://origin/$app/$stream", "live", "摄像头", "rtsp://origin/live/%E6%91%84%E5%83%8F%E5%A4%B4"},
}

func TestTemplateExpandsAppAndStream(t *testing.T) {
	for _, c := range templateCases {
		tm, err := ParseTemplate(c.tmpl)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", c.tmpl, err)
			continue
		}
		if got := tm.Expand(c.app, c.stream); got != c.want {
			t.Errorf("%q with %s/%s = %q, want %q", c.tmpl, c.app, c.stream, got, c.want)
		}
	}
}

func TestTemplateRefusesWhatCannotWork(t *testing.T) {
	for _, c := range []struct{ tmpl, says string }{
		{"rtsp://origin/live/cam1", "names no stream"},
		{"rtsp://origin/$app", "names no stream"},
		{"rtsp://origin/%s", "names no stream"},
		{"rtsp://origin/%s/%s/%s", "a third %s"},
		{"ftp://origin/$app/$stream", "scheme"},
		{"http://origin/$app/$stream.mp4", "neither .flv"},
		{"origin/$app/$stream", "does not parse"},
	} {
		_, err := ParseTemplate(c.tmpl)
		if !errors.Is(err, ErrBadTemplate) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseTemplate(%q) = %v, want ErrBadTemplate saying %q", c.tmpl, err, c.says)
		}
	}
}

func TestPathOKRefusesSegmentsThatMove(t *testing.T) {
	for _, c := range []struct {
		app, stream string
		ok          bool
	}{
		{"live", "cam1", true},
		{"record", "live/s/2026-12-07/10-00-00.mp4", true},
		{"live", "a..b", true},
		{"live", "../admin", false},
		{"live", "a/./b", false},
		{"live", "a//b", false},
		{"live", "a/", false},
		{"live", "", false},
		{"", "cam", false},
		{"..", "cam", false},
	} {
		if got := PathOK(c.app, c.stream); got != c.ok {
			t.Errorf("PathOK(%q, %q) = %v, want %v", c.app, c.stream, got, c.ok)
		}
	}
}

func TestHopsCountsEdges(t *testing.T) {
	for params, want := range map[string]int{
		"":                       0,
		"token=abc":              0,
		"edge=1":                 1, // a ZLMediaKit edge
		"edge=1&edge_hops=2":     2,
		"edge_hops=99":           MaxHops,
		"edge_hops=-3&edge=1":    1,
		"edge_hops=x":            0,
		"%zz&edge=1&edge_hops=3": 3,
	} {
		if got := Hops(params); got != want {
			t.Errorf("Hops(%q) = %d, want %d", params, got, want)
		}
	}
}

func TestPullQueryForwardsTheReadersParamsAndCountsTheHop(t *testing.T) {
	for _, c := range []struct {
		params string
		hops   int
		want   string
	}{
		{"", 1, "edge=1&edge_hops=1"},
		{"token=abc", 1, "token=abc&edge=1&edge_hops=1"},
		{"edge=1&edge_hops=1&token=a%26b&vhost=x", 2, "token=a%26b&edge=1&edge_hops=2"},
		{"a=1#frag", 1, "a=1%23frag&edge=1&edge_hops=1"},
	} {
		if got := PullQuery(c.params, c.hops); got != c.want {
			t.Errorf("PullQuery(%q, %d) = %q, want %q", c.params, c.hops, got, c.want)
		}
	}
}

func TestWithQueryLeavesSRTAlone(t *testing.T) {
	for _, c := range []struct{ u, want string }{
		{"rtsp://o/live/a", "rtsp://o/live/a?edge=1"},
		{"http://o/live/a.live.flv?x=1", "http://o/live/a.live.flv?x=1&edge=1"},
		{"srt://o:9000?streamid=#!::r=live/a,m=request", "srt://o:9000?streamid=#!::r=live/a,m=request"},
	} {
		if got := withQuery(c.u, "edge=1"); got != c.want {
			t.Errorf("withQuery(%q) = %q, want %q", c.u, got, c.want)
		}
	}
}

// TestEdgeDoesNotPullForALoop: a request that went through MaxHops edges
// starts no pull, and one pull per path however often it is asked for.
func TestEdgeDoesNotPullForALoop(t *testing.T) {
	tm, err := ParseTemplate("rtsp://127.0.0.1:1/$app/$stream")
	if err != nil {
		t.Fatal(err)
	}
	m := &proxy.Manager{}
	h := hub.New(hub.Options{Observer: m})
	m.Hub = h
	t.Cleanup(func() { m.Close(); h.Close() })
	e := &Edge{Proxies: m}
	e.SetSettings(Settings{Origins: []Template{tm}, Timeout: 2e9, RetryCount: 0})

	e.StreamNotFound("live/loop", hub.Origin{Proto: "rtsp", Params: "edge=1&edge_hops=4"})
	if _, ok := m.Get(proxy.Key("live/loop")); ok {
		t.Fatal("a request through MaxHops edges started a pull")
	}
	for range 3 {
		e.StreamNotFound("live/a", hub.Origin{Proto: "rtsp", Params: "edge=1&edge_hops=1"})
	}
	if got := len(m.List()); got != 1 {
		t.Fatalf("three readers of one path started %d pulls, want 1", got)
	}
	info, _ := m.Get(proxy.Key("live/a"))
	if u, _ := url.Parse(info.Spec.URL); u.Query().Get(HopsParam) != "2" {
		t.Errorf("the pull's URL %q does not count the hop (edge_hops=2)", info.Spec.URL)
	}
}

// FuzzExpand: any template that parses expands any names into a URL whose
// names cannot escape their place (template text is trusted, names not).
func FuzzExpand(f *testing.F) {
	for _, c := range templateCases {
		f.Add(c.tmpl, c.app, c.stream)
	}
	f.Add("rtsp://o/${app/$stream", "a", "b")
	f.Add("rtsp://o/%", "", "")
	f.Fuzz(func(t *testing.T, tmpl, app, stream string) {
		tm, err := ParseTemplate(tmpl)
		if err != nil {
			return
		}
		out := tm.Expand(app, stream)
		plain := tm.Expand("", "")
		// Whatever the names, the URL holds nothing but the template's
		// text and unreserved bytes or %XX in their places.
		for _, r := range []string{"?", "#", "@", " ", ","} {
			if strings.Count(out, r) != strings.Count(plain, r) {
				t.Fatalf("names %q %q added %q to %q (template %q)", app, stream, r, out, tmpl)
			}
		}
		// Only the stream's own slashes are added.
		if got, want := strings.Count(out, "/"), strings.Count(plain, "/")+strings.Count(stream, "/")*tm.count(phStream); got != want {
			t.Fatalf("names %q %q gave %q with %d slashes, want %d (template %q)", app, stream, out, got, want, tmpl)
		}
	})
}
