package rtmp

import (
	"testing"

	"github.com/berthmedia/berth/internal/flv/amf0"
)

// statusCases are ParseStatus's table and FuzzParseStatus's seeds.
var statusCases = []struct {
	name string
	msg  *Message
	want Status
	err  bool
}{
	{"refusal", &Message{Type: msgCommandAMF0, Body: amf0.Encode("onStatus", 0.0, amf0.Null{},
		amf0.Object{{Key: "level", Value: "error"}, {Key: "code", Value: "NetStream.Publish.BadName"}, {Key: "description", Value: "stream live/s is already published"}})},
		Status{"error", "NetStream.Publish.BadName", "stream live/s is already published"}, false},
	{"start", &Message{Type: msgCommandAMF0, Body: amf0.Encode("onStatus", 0.0, amf0.Null{},
		amf0.Object{{Key: "level", Value: "status"}, {Key: "code", Value: "NetStream.Publish.Start"}})},
		Status{Level: "status", Code: "NetStream.Publish.Start"}, false},
	{"no info", &Message{Type: msgCommandAMF0, Body: amf0.Encode("onStatus", 0.0)}, Status{}, false},
	{"other command", &Message{Type: msgCommandAMF0, Body: amf0.Encode("_result", 1.0)}, Status{}, true},
	{"not a command", &Message{Type: msgAudio, Body: []byte{0xaf, 1}}, Status{}, true},
	{"garbage", &Message{Type: msgCommandAMF0, Body: []byte{2, 0, 9, 'o'}}, Status{}, true},
	{"nil", nil, Status{}, true},
}

func TestParseStatus(t *testing.T) {
	for _, tc := range statusCases {
		got, err := ParseStatus(tc.msg)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v (error %v)", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// FuzzParseStatus: a server's onStatus is untrusted bytes; parsing never panics.
func FuzzParseStatus(f *testing.F) {
	for _, tc := range statusCases {
		if tc.msg != nil {
			f.Add(tc.msg.Body)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ParseStatus(&Message{Type: msgCommandAMF0, Body: body})
	})
}
