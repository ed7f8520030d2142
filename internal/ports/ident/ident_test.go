package ident

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

var replyCases = []struct {
	name, in string
	proto    string
	code     int
	server   string
	instance string
	describe string
}{
	{"berth", "RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: Berth/0.1.0\r\nX-Berth-Instance: ab12\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n",
		"RTSP", 200, "Berth/0.1.0", "ab12", "Berth 0.1.0 (instance ab12)"},
	{"wmserver", "RTSP/1.0 200 OK\r\nServer: WMServer/9.1.1.5000\r\nCSeq: 1\r\n\r\n",
		"RTSP", 200, "WMServer/9.1.1.5000", "", `RTSP server "WMServer/9.1.1.5000" (Windows Media Services (wmpnetwk))`},
	{"zlm 404", "RTSP/1.0 404 Stream Not Found\r\nCSeq: 2\r\nServer: ZLMediaKit(git hash:abc)\r\n\r\n",
		"RTSP", 404, "ZLMediaKit(git hash:abc)", "", `RTSP server "ZLMediaKit(git hash:abc)"`},
	{"python http", "HTTP/1.0 400 Bad request version ('RTSP/1.0')\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nDate: Tue, 24 Nov 2026 06:00:00 GMT\r\nContent-Type: text/html\r\n\r\n<html>",
		"HTTP", 400, "SimpleHTTP/0.6 Python/3.11.2", "", `HTTP server "SimpleHTTP/0.6 Python/3.11.2" (Python http.server)`},
	{"ssh", "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "", 0, "", "", `something that speaks neither RTSP, HTTP nor RTMP: "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"`},
}

func TestReadReply(t *testing.T) {
	for _, c := range replyCases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ReadReply(bufio.NewReader(strings.NewReader(c.in)))
			if err != nil {
				t.Fatal(err)
			}
			if r.Protocol != c.proto || r.Code != c.code || r.Server != c.server || r.Instance != c.instance {
				t.Errorf("got %+v", r.Identity)
			}
			if d := r.Describe(); d != c.describe {
				t.Errorf("Describe = %s\nwant       %s", d, c.describe)
			}
		})
	}
	if _, err := ReadReply(bufio.NewReader(strings.NewReader(""))); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("empty: %v", err)
	}
}

func FuzzReadReply(f *testing.F) {
	for _, c := range replyCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadReply(bufio.NewReader(strings.NewReader(string(b))))
		if err == nil {
			_ = r.Describe()
		}
	})
}

func TestAMF0RoundTrip(t *testing.T) {
	b := amfAppend(nil, "_result")
	b = amfAppend(b, 1)
	b = amfAppend(b, amfObject{{"fmsVer", "Berth/0.1"}, {"capabilities", 31}})
	b = amfAppend(b, amfObject{{"level", "status"}, {"code", "NetConnection.Connect.Success"}, {"berth_instance", "ab"}, {"ok", true}, {"n", nil}})
	got, err := amfDecodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"_result", 1.0, map[string]any{"fmsVer": "Berth/0.1", "capabilities": 31.0},
		map[string]any{"level": "status", "code": "NetConnection.Connect.Success", "berth_instance": "ab", "ok": true, "n": nil}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
	for _, bad := range [][]byte{{0x00, 1}, {0x02, 0, 5, 'a'}, {0x03, 0, 1}, {0x0A, 0, 0, 0, 9}, {0x42}} {
		if _, err := amfDecodeAll(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

func FuzzAMF0(f *testing.F) {
	b := amfAppend(nil, "onStatus")
	b = amfAppend(b, 0)
	b = amfAppend(b, nil)
	b = amfAppend(b, amfObject{{"code", "NetStream.Play.Start"}})
	f.Add(b)
	f.Add([]byte{0x08, 0, 0, 0, 1, 0, 1, 'a', 0x0A, 0, 0, 0, 1, 0x01, 1, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) { amfDecodeAll(b) })
}

// fakeRTMP is an RTMP server that answers connect like Berth does, with a
// chunk size change first (to exercise reassembly), and play with onStatus.
func fakeRTMP(t *testing.T, playCode string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveFakeRTMP(c, playCode)
		}
	}()
	return l.Addr().String()
}

func serveFakeRTMP(c net.Conn, playCode string) {
	defer c.Close()
	c1 := make([]byte, 1537)
	if _, err := io.ReadFull(c, c1); err != nil {
		return
	}
	s := make([]byte, 1+1536+1536)
	s[0] = 3
	copy(s[1537:], c1[1:])
	c.Write(s)
	if _, err := io.ReadFull(c, make([]byte, 1536)); err != nil {
		return
	}
	send := func(csid byte, typ byte, sid uint32, p []byte, chunk int) {
		msg := []byte{csid, 0, 0, 0, byte(len(p) >> 16), byte(len(p) >> 8), byte(len(p)), typ}
		msg = binary.LittleEndian.AppendUint32(msg, sid)
		for i := 0; i < len(p); i += chunk {
			if i > 0 {
				msg = append(msg, 0xC0|csid)
			}
			msg = append(msg, p[i:min(i+chunk, len(p))]...)
		}
		c.Write(msg)
	}
	send(2, rtmpSetChunkSize, 0, []byte{0, 0, 0, 40}, 128)
	cl := &RTMPConn{conn: c, br: bufio.NewReader(c), inChunk: 128, chunks: map[uint32]*chunkState{}}
	for {
		vals, err := cl.readCommand()
		if err != nil {
			return
		}
		var p []byte
		switch vals[0] {
		case "connect":
			for _, v := range []any{"_result", 1, amfObject{{"fmsVer", "Berth/0.1.0"}},
				amfObject{{"level", "status"}, {"code", "NetConnection.Connect.Success"}, {"berth_instance", "feed"}}} {
				p = amfAppend(p, v)
			}
		case "createStream":
			for _, v := range []any{"_result", 2, nil, 1} {
				p = amfAppend(p, v)
			}
		case "play":
			for _, v := range []any{"onStatus", 0, nil, amfObject{{"level", "status"}, {"code", playCode}}} {
				p = amfAppend(p, v)
			}
		}
		send(3, rtmpAMF0Command, 0, p, 40)
	}
}

func TestRTMPIdentifyAndPlay(t *testing.T) {
	addr := fakeRTMP(t, "NetStream.Play.StreamNotFound")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := RTMPIdentify(ctx, addr, "live")
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsBerth() || res.Instance != "feed" || res.Connect != "_result" {
		t.Errorf("res = %+v", res)
	}
	conn, _ := net.Dial("tcp", addr)
	defer conn.Close()
	c, err := RTMPHandshake(conn)
	if err != nil {
		t.Fatal(err)
	}
	var r RTMPResult
	if err := c.Connect("rtmp://"+addr+"/live", "live", &r); err != nil {
		t.Fatal(err)
	}
	if err := c.Play("missing", &r); err != nil {
		t.Fatal(err)
	}
	if r.PlayCode != "NetStream.Play.StreamNotFound" {
		t.Errorf("play code %q", r.PlayCode)
	}
}

// The RTMP probe's failure paths: an HTTP server, a silent listener.
func TestRTMPNotRTMP(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := RTMPIdentify(ctx, l.Addr().String(), "live")
	if !errors.Is(err, ErrNotRTMP) || !strings.Contains(err.Error(), `"HTTP/1.1 400 Bad Request`) {
		t.Errorf("err = %v", err)
	}

	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = RTMPIdentify(ctx2, silent.Addr().String(), "live")
	if !errors.Is(err, ErrNoAnswer) {
		t.Errorf("silent: %v", err)
	}
}

func FuzzRTMPMessages(f *testing.F) {
	p := amfAppend(nil, "_result")
	msg := []byte{0x03, 0, 0, 0, 0, 0, byte(len(p)), rtmpAMF0Command, 0, 0, 0, 0}
	f.Add(append(msg, p...))
	f.Add([]byte{0x02, 0, 0, 0, 0, 0, 4, rtmpSetChunkSize, 0, 0, 0, 0, 0, 0, 0, 1, 0x42, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &RTMPConn{br: bufio.NewReader(strings.NewReader(string(b))), inChunk: 128, chunks: map[uint32]*chunkState{}}
		for i := 0; i < 100; i++ {
			if _, err := c.readCommand(); err != nil {
				return
			}
		}
	})
}
