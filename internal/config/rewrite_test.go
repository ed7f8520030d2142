package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRewrite(t *testing.T) {
	cases := []struct {
		name, src string
		kv        map[string]string
		want      string
		wantErr   string
	}{
		{name: "value replaced in place, comments kept",
			src:  "; top\n[rtsp]\n# the port\nport=554\nkeepAliveSecond=15\n",
			kv:   map[string]string{"rtsp.port": "8554"},
			want: "; top\n[rtsp]\n# the port\nport=8554\nkeepAliveSecond=15\n"},
		{name: "case-insensitive match keeps the file's spelling and spacing",
			src:  "[RTSP]\n  Port = 554\n",
			kv:   map[string]string{"rtsp.port": "8554"},
			want: "[RTSP]\n  Port = 8554\n"},
		{name: "missing key goes after the section's last key, before the next section's comment",
			src:  "[rtsp]\nport=554\n\n# about rtmp\n[rtmp]\nport=1935\n",
			kv:   map[string]string{"rtsp.keepAliveSecond": "30"},
			want: "[rtsp]\nport=554\nkeepAliveSecond=30\n\n# about rtmp\n[rtmp]\nport=1935\n"},
		{name: "missing section appended",
			src:  "[rtsp]\nport=554\n",
			kv:   map[string]string{"hub.ring_size": "8192", "hub.slow_reader": "close"},
			want: "[rtsp]\nport=554\n\n[hub]\nring_size=8192\nslow_reader=close\n"},
		{name: "empty file",
			src:  "",
			kv:   map[string]string{"api.secret": "x"},
			want: "[api]\nsecret=x\n"},
		{name: "CRLF kept",
			src:  "[rtsp]\r\nport=554\r\n",
			kv:   map[string]string{"rtsp.port": "1", "rtsp.authBasic": "1"},
			want: "[rtsp]\r\nport=1\r\nauthBasic=1\r\n"},
		{name: "no final newline kept",
			src:  "[rtsp]\nport=554",
			kv:   map[string]string{"rtsp.port": "1"},
			want: "[rtsp]\nport=1"},
		{name: "every occurrence of a repeated key",
			src:  "[rtsp]\nport=1\n[rtmp]\nport=2\n[rtsp]\nport=3\n",
			kv:   map[string]string{"rtsp.port": "9"},
			want: "[rtsp]\nport=9\n[rtmp]\nport=2\n[rtsp]\nport=9\n"},
		{name: "unknown keys and sections untouched, BOM kept",
			src:  "\ufeff[rtsp]\ndirectProxy=1\n[mine]\nx=y\n",
			kv:   map[string]string{"rtsp.port": "1"},
			want: "\ufeff[rtsp]\ndirectProxy=1\nport=1\n[mine]\nx=y\n"},
		{name: "empty section gets the key after its header",
			src:  "[api]\n\n[rtsp]\nport=1\n",
			kv:   map[string]string{"api.secret": "s"},
			want: "[api]\nsecret=s\n\n[rtsp]\nport=1\n"},
		{name: "value with = and spaces", src: "[api]\nsecret=a\n", kv: map[string]string{"api.secret": "a=b c"}, want: "[api]\nsecret=a=b c\n"},
		{name: "value spanning lines refused", src: "", kv: map[string]string{"api.secret": "a\nb"}, wantErr: "cannot span lines"},
		{name: "name without a section refused", src: "", kv: map[string]string{"port": "1"}, wantErr: "want section.key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Rewrite([]byte(tc.src), tc.kv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestSetKeysRewritesTheFile: the file on disk changes atomically, keeps
// its comments and mode, the rewritten file loads with the new values, and
// no temporary file is left behind.
func TestSetKeysRewritesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.ini")
	src := "#!!!! ZLMediaKit's sample\n" + string(ZLMediaKitDefaultINI())
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.ini")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if err := SetKeys(link, map[string]string{"rtsp.port": "8554", "hub.ring_size": "8192"}); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(out), "#!!!! ZLMediaKit's sample\n[api]\n") || !strings.Contains(string(out), "\n[rtsp]\n") ||
		!strings.Contains(string(out), "port=8554\n") || !strings.HasSuffix(string(out), "\n[hub]\nring_size=8192\n") {
		t.Errorf("rewritten file:\n%s", out)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced by a file")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", fi.Mode().Perm())
	}
	c, err := LoadFile(path)
	if err != nil || c.RTSP.Port != 8554 || c.Hub.RingSize != 8192 {
		t.Fatalf("reload: %v %+v", err, c)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("files left in the directory: %v", entries)
	}
	if err := SetKeys(filepath.Join(dir, "missing.ini"), map[string]string{"rtsp.port": "1"}); err == nil || !strings.Contains(err.Error(), "missing.ini") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzRewrite: for any file, setting one key makes the file read back with
// that value, and every other line stays, in order; setting nothing
// changes nothing.
func FuzzRewrite(f *testing.F) {
	f.Add("[rtsp]\nport=554\n", "rtsp", "port", "8554")
	f.Add("; c\n[a]\r\nk = v\r\n[b]\nk=1", "b", "k", "2")
	f.Add("", "hub", "ring_size", "1")
	f.Add("\ufeffk=v\n[x\n=y\n", "x", "k", "v")
	f.Fuzz(func(t *testing.T, src, section, key, value string) {
		same, err := Rewrite([]byte(src), nil)
		if err != nil || string(same) != src {
			t.Fatalf("empty rewrite changed the file: %v", err)
		}
		out, err := Rewrite([]byte(src), map[string]string{section + "." + key: value})
		if err != nil {
			return // an invalid name or value is refused, fine
		}
		section, key = strings.TrimSpace(section), strings.TrimSpace(key)
		if strings.Contains(section, ".") || strings.ContainsAny(src, "\r") && !strings.Contains(src, "\r\n") {
			return // "a.b.c" splits at the first dot; lone CRs are not line ends here
		}
		got, err := iniValue(out, section, key)
		if err != nil || got != strings.TrimSpace(value) {
			t.Fatalf("after setting [%s] %s=%q the file reads %q (%v):\n%q", section, key, value, got, err, out)
		}
		// Every line of src is in out, in order (changed ones at their place).
		ol := strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n")
		j := 0
		for _, l := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
			for j < len(ol) && ol[j] != l && !strings.Contains(l, "=") {
				j++
			}
			if !strings.Contains(l, "=") && j >= len(ol) {
				t.Fatalf("line %q of the source is gone:\n%q", l, out)
			}
			j++
		}
	})
}
