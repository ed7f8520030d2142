package hooks

import (
	"errors"
	"testing"
)

var replyCases = []struct {
	name    string
	status  int
	body    string
	retry   bool
	wantErr error // nil, ErrBadStatus, ErrBadReply, or a *RefusedError (any)
	refused bool
	msg     string
}{
	{name: "ok", status: 200, body: `{"code":0,"msg":"success"}`},
	{name: "ok float code", status: 200, body: `{"code":0.0}`},
	{name: "refused", status: 200, body: `{"code":-1,"msg":"no such user"}`, refused: true, msg: "no such user"},
	{name: "refused big", status: 200, body: `{"code":401}`, refused: true},
	{name: "code as string", status: 200, body: `{"code":"0"}`, retry: true, wantErr: ErrBadReply},
	{name: "code fraction", status: 200, body: `{"code":0.5}`, retry: true, wantErr: ErrBadReply},
	{name: "no code", status: 200, body: `{"msg":"x"}`, retry: true, wantErr: ErrBadReply},
	{name: "not json", status: 200, body: `<html>`, retry: true, wantErr: ErrBadReply},
	{name: "null", status: 200, body: `null`, retry: true, wantErr: ErrBadReply},
	{name: "array", status: 200, body: `[0]`, retry: true, wantErr: ErrBadReply},
	{name: "empty", status: 200, body: ``, retry: true, wantErr: ErrBadReply},
	{name: "status 500", status: 500, body: `{"code":0}`, retry: true, wantErr: ErrBadStatus},
	{name: "status 404", status: 404, body: ``, retry: true, wantErr: ErrBadStatus},
}

func TestParseReply(t *testing.T) {
	for _, tc := range replyCases {
		t.Run(tc.name, func(t *testing.T) {
			r, retry, err := ParseReply("on_publish", tc.status, []byte(tc.body))
			if retry != tc.retry {
				t.Errorf("retry %v, want %v", retry, tc.retry)
			}
			var refused *RefusedError
			switch {
			case tc.refused:
				if !errors.As(err, &refused) || refused.Msg != tc.msg || refused.Hook != "on_publish" {
					t.Fatalf("err %v, want a refusal with msg %q", err, tc.msg)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
			default:
				if err != nil || r == nil {
					t.Fatalf("err %v, reply %v; want a reply", err, r)
				}
			}
		})
	}
}

func TestReplyFieldsAreReadLoosely(t *testing.T) {
	r, _, err := ParseReply("h", 200, []byte(`{"code":0,"close":true,"a":1,"b":"1","c":"false","d":0,"e":"yes",
		"f":null,"realm":"zlm","n":"30","m":12,"obj":{"x":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"close": true, "a": true, "b": true, "c": false, "d": false, "e": true} {
		if v, ok := r.Bool(key); !ok || v != want {
			t.Errorf("Bool(%s) = %v, %v; want %v", key, v, ok, want)
		}
	}
	for _, key := range []string{"f", "missing", "obj"} {
		if _, ok := r.Bool(key); ok {
			t.Errorf("Bool(%s) ok, want not a switch", key)
		}
	}
	if r.String("realm") != "zlm" || r.String("m") != "12" || r.String("obj") != "" || r.String("f") != "" {
		t.Errorf("String: %q %q %q %q", r.String("realm"), r.String("m"), r.String("obj"), r.String("f"))
	}
	if n, ok := r.Int("n"); !ok || n != 30 {
		t.Errorf("Int(n) = %d %v", n, ok)
	}
	if n, ok := r.Int("m"); !ok || n != 12 {
		t.Errorf("Int(m) = %d %v", n, ok)
	}
}

func TestPublishOptions(t *testing.T) {
	r, _, err := ParsePublishOptionsReply(`{"code":0,"enable_hls":false,"enable_mp4":"1","enableHls":true,
		"auto_close":1,"mp4_max_second":"3600","mp4_save_path":"/rec","enable_rtsp":true}`)
	if err != nil {
		t.Fatal(err)
	}
	o := ParsePublishOptions(r)
	if o.EnableHLS == nil || *o.EnableHLS || o.EnableMP4 == nil || !*o.EnableMP4 || o.AutoClose == nil || !*o.AutoClose ||
		o.MP4MaxSecond == nil || *o.MP4MaxSecond != 3600 || o.MP4SavePath != "/rec" || o.EnableRTSP == nil || !*o.EnableRTSP {
		t.Errorf("options: %+v", o)
	}
	if o.EnableRTMP != nil || o.HLSDemand != nil || o.ContinuePushMS != nil {
		t.Errorf("absent switches are set: %+v", o)
	}
	// enableMP4 / enableHls, ZLMediaKit's older names, count when the new one is absent.
	r, _, _ = ParsePublishOptionsReply(`{"code":0,"enableMP4":true}`)
	if o := ParsePublishOptions(r); o.EnableMP4 == nil || !*o.EnableMP4 {
		t.Errorf("enableMP4 not read: %+v", o)
	}
}

func ParsePublishOptionsReply(body string) (Reply, bool, error) {
	return ParseReply("on_publish", 200, []byte(body))
}

func FuzzParseReply(f *testing.F) {
	for _, tc := range replyCases {
		f.Add(tc.status, []byte(tc.body))
	}
	f.Add(200, []byte(`{"code":0,"enable_hls":"x","mp4_max_second":1e400,"close":[1]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, _, err := ParseReply("h", status, body)
		if err == nil && r == nil {
			t.Fatal("no error and no reply")
		}
		if err != nil {
			return
		}
		ParsePublishOptions(r)
		r.Bool("close")
		r.String("realm")
	})
}
