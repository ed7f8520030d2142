package config

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

// TestZLMediaKitConfigLoadsQuietly: ZLMediaKit's shipped config.ini loads
// with the keys Berth implements applied, and at most a couple of lines
// above debug: one info line counting the keys Berth does not use, no
// warnings. Each unused key is one debug line.
func TestZLMediaKitConfigLoadsQuietly(t *testing.T) {
	c := Default()
	if err := c.Parse(strings.NewReader(string(ZLMediaKitDefaultINI())), "config.ini"); err != nil {
		t.Fatal(err)
	}
	if c.RTSP.Port != 554 || c.RTMP.Port != 1935 || c.HTTP.Port != 80 || c.RTPProxy.Port != 10000 ||
		c.RTPProxy.PortRange != (PortRange{30000, 35000}) || c.API.Secret != "035c73f7-bb6b-4889-a715-d9eb2d1925cc" ||
		c.General.ListenIP != "::" || c.RTSP.KeepAliveSecond != 15 {
		t.Errorf("ZLMediaKit's keys were not applied: rtsp %d rtmp %d http %d rtp %d range %v secret %q",
			c.RTSP.Port, c.RTMP.Port, c.HTTP.Port, c.RTPProxy.Port, c.RTPProxy.PortRange, c.API.Secret)
	}
	var loud []string
	debug := 0
	for _, n := range c.Notes {
		if n.Level > slog.LevelDebug {
			loud = append(loud, n.String())
		} else {
			debug++
		}
	}
	if len(loud) > 2 {
		t.Errorf("%d notes above debug, want at most 2:\n%s", len(loud), strings.Join(loud, "\n"))
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings for a stock ZLMediaKit config: %q", c.Warnings)
	}
	// Keys Berth's table adds on other branches ([hook] ...) move from
	// debug to used; the sum is always the file's key count.
	if debug+usedInFile(t) != ZLMediaKitKeyCount() {
		t.Errorf("%d debug notes + %d used keys != %d keys in the file", debug, usedInFile(t), ZLMediaKitKeyCount())
	}
	want := "config.ini: " + strconv.Itoa(debug) + " ZLMediaKit keys are not used by Berth (yet); --log-level debug lists them"
	if len(loud) == 0 || loud[len(loud)-1] != want {
		t.Errorf("summary line %q, want %q", loud, want)
	}
	if ZLMediaKitKeyCount() < 150 {
		t.Errorf("catalogue holds %d keys; ZLMediaKit's config.ini has more", ZLMediaKitKeyCount())
	}
}

// usedInFile counts the file's keys that Berth implements.
func usedInFile(t *testing.T) int {
	n := 0
	section := ""
	for _, line := range strings.Split(zlmConfigINI, "\n") {
		switch {
		case line == "":
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			name, _, _ := strings.Cut(line, "=")
			if lookup(section, name) != nil {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no key of ZLMediaKit's file is Berth's")
	}
	return n
}

func TestNotesLevels(t *testing.T) {
	ini := "[rtsp]\nport=8555\nlowLatency=1\nlowLatencyy=1\n[webrtcx]\nport=1\n[hls]\nsegDelay=4\nsegDurr=4\n[general]\nenableVhost=0\n"
	c := Default()
	if err := c.Parse(strings.NewReader(ini), "z.ini"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range c.Notes {
		got = append(got, n.Level.String()+" "+n.String())
	}
	want := []string{
		"DEBUG z.ini:3: [rtsp] lowLatency is a ZLMediaKit key Berth does not use (yet); ignored",
		"WARN z.ini:4: unknown key [rtsp] lowLatencyy, ignored (neither Berth nor ZLMediaKit has it); did you mean lowLatency?",
		"WARN z.ini:5: unknown section [webrtcx], its keys are ignored (neither Berth nor ZLMediaKit has it)",
		"DEBUG z.ini:8: [hls] segDelay is a ZLMediaKit key Berth does not use (yet); ignored",
		"WARN z.ini:9: unknown key [hls] segDurr, ignored (neither Berth nor ZLMediaKit has it); did you mean segDur?",
		"DEBUG z.ini:11: [general] enableVhost is a ZLMediaKit key Berth does not use (yet); ignored",
		"INFO z.ini: 3 ZLMediaKit keys are not used by Berth (yet); --log-level debug lists them",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(c.Warnings) != 3 || c.Warnings[0] != "z.ini:4: unknown key [rtsp] lowLatencyy, ignored (neither Berth nor ZLMediaKit has it); did you mean lowLatency?" {
		t.Errorf("Warnings %q: want the warn notes' texts", c.Warnings)
	}
	if c.RTSP.Port != 8555 {
		t.Errorf("rtsp port %d", c.RTSP.Port)
	}
}

func TestValuesSetClone(t *testing.T) {
	c := Default()
	v := c.Values()
	if v["rtsp.port"] != "8554" || v["api.secret"] != c.API.Secret || v["rtp_proxy.port_range"] != "31000-31999" {
		t.Errorf("values: %v", v)
	}
	if len(v) != len(Keys()) {
		t.Errorf("%d values for %d keys", len(v), len(Keys()))
	}
	d := c.Clone()
	if err := d.Set("RTSP.Port", "9000"); err != nil || d.RTSP.Port != 9000 || c.RTSP.Port != 8554 {
		t.Errorf("set on the clone: %v, clone %d, original %d", err, d.RTSP.Port, c.RTSP.Port)
	}
	if err := d.Set("auth.play", "a:1"); err != nil {
		t.Fatal(err)
	}
	e := d.Clone()
	e.Auth.Play[0].Password = "changed"
	if d.Auth.Play[0].Password != "1" {
		t.Error("a clone shares the users slice")
	}
	for name, want := range map[string]string{
		"rtsp.port":      "70000 is out of range",
		"hls.segDelay":   "ZLMediaKit key Berth does not use",
		"nothing.at_all": "not a key Berth has",
		"noperiod":       "section.key",
	} {
		if err := d.Set(name, "70000"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set(%s): %v, want %q", name, err, want)
		}
	}
	if k, ok := CanonicalKey("RTP_PROXY.TIMEOUTSEC"); !ok || k != "rtp_proxy.timeoutSec" {
		t.Errorf("canonical: %s %v", k, ok)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(string(ZLMediaKitDefaultINI()))
	f.Add("[rtsp]\nport=1\n[x\n")
	f.Add("\ufeff[auth]\npublish=a:b,c\n")
	f.Fuzz(func(t *testing.T, ini string) {
		c := Default()
		_ = c.Parse(strings.NewReader(ini), "f.ini") // must not panic
		_ = c.Clone().Values()
	})
}
