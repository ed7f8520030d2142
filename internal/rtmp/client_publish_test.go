package rtmp

import (
	"bufio"
	"bytes"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/ports"
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

// TestClientAnswersPing: a ping request gets a ping response with the same
// timestamp on the wire (read by a peer that did the server handshake over
// a real socket); other messages are left alone.
func TestClientAnswersPing(t *testing.T) {
	l, err := ports.Listen(ports.Spec{Name: "rtmp", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *Message, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := serverHandshake(nc); err != nil {
			got <- nil
			return
		}
		m, _ := NewChunkReader(bufio.NewReader(nc)).ReadMessage()
		got <- m
	}()
	c, err := Dial(t.Context(), l.Addr().String(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := c.AnswerPing(&Message{Type: msgAudio, Body: []byte{0, 6, 1, 2, 3, 4}}); ok || err != nil {
		t.Errorf("answered an audio message: %v %v", ok, err)
	}
	if ok, err := c.AnswerPing(&Message{Type: msgUserControl, Body: []byte{0, 6, 1, 2, 3, 4}}); !ok || err != nil {
		t.Errorf("ping not answered: %v %v", ok, err)
	}
	m := <-got
	if m == nil || m.Type != msgUserControl || !bytes.Equal(m.Body, []byte{0, 7, 1, 2, 3, 4}) {
		t.Errorf("the peer read %+v, want a ping response (user control 7) with timestamp 1,2,3,4", m)
	}
}
