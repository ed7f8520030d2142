package api

import (
	"errors"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/berthmedia/berth/internal/hub"
)

// DefaultVhost is ZLMediaKit's name for "no virtual host".
const DefaultVhost = "__defaultVhost__"

// ZLMediaKit's origin types (MediaOriginType).
var originTypes = map[string]int{"rtmp": 1, "rtsp": 2, "rtp": 3, "pull": 4, "ffmpeg": 5, "mp4": 6, "webrtc": 8, "srt": 9}

var originNames = map[int]string{0: "unknown", 1: "rtmp_push", 2: "rtsp_push", 3: "rtp_push", 4: "pull",
	5: "ffmpeg_pull", 6: "mp4_vod", 7: "device_chn", 8: "rtc_push", 9: "srt_push"}

// schemas are the protocols every stream is listed in.
func (h *Handler) schemas() []string {
	if len(h.Schemas) == 0 {
		return []string{"rtsp", "rtmp"}
	}
	return h.Schemas
}

// schemaOf is the schema a player of protocol proto reads: ZLMediaKit
// serves HTTP-FLV and WS-FLV from its rtmp source, WS-fMP4 from fmp4 and
// so on, so "http-flv" and "ws-flv" count under rtmp.
func schemaOf(proto string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(proto, "http-"), "ws-")
	if p == "flv" {
		return "rtmp"
	}
	if p == "srt" { // SRT players read the TS muxer, as in ZLMediaKit (its TsMediaSource)
		return "ts"
	}
	return p
}

// entry is one stream in one schema: a ZLMediaKit MediaSource.
type entry struct {
	s           *hub.Stream
	schema      string
	app, stream string
}

// match lists the (stream, schema) pairs that the optional filters
// schema, vhost, app and stream select, as ZLMediaKit's for_each_media.
func (h *Handler) match(p params) []entry {
	var out []entry
	if h.Hub == nil {
		return out
	}
	if p["vhost"] != "" && p["vhost"] != DefaultVhost {
		return out
	}
	for _, s := range h.Hub.Streams() {
		app, stream := splitPath(s.Path)
		if (p["app"] != "" && p["app"] != app) || (p["stream"] != "" && p["stream"] != stream) {
			continue
		}
		for _, schema := range h.schemas() {
			if p["schema"] == "" || p["schema"] == schema {
				out = append(out, entry{s, schema, app, stream})
			}
		}
	}
	return out
}

// find is ZLMediaKit's MediaSource::find: the stream of schema, vhost, app
// and stream, all required. Berth has no virtual hosts: any vhost names the
// one there is (as ZLMediaKit with enableVhost=0).
func (h *Handler) find(p params) (entry, error) {
	if err := p.require("schema", "vhost", "app", "stream"); err != nil {
		return entry{}, err
	}
	if h.Hub != nil && slices.Contains(h.schemas(), p["schema"]) {
		if s := h.Hub.Get(p["app"] + "/" + p["stream"]); s != nil {
			return entry{s, p["schema"], p["app"], p["stream"]}, nil
		}
	}
	return entry{}, fail(CodeNotFound, "can not find the stream")
}

// getMediaList lists every live stream, once per schema it can be read in,
// filtered by the optional schema, vhost, app and stream parameters.
func (h *Handler) getMediaList(_ *http.Request, p params) (map[string]any, error) {
	h.sampler.use(h.Hub)
	data := []map[string]any{}
	now := time.Now()
	for _, e := range h.match(p) {
		data = append(data, h.mediaItem(e, now))
	}
	return map[string]any{"data": data}, nil
}

// getMediaInfo is one stream's getMediaList entry, its fields at the top
// level of the reply, with online (older ZLMediaKit's field).
func (h *Handler) getMediaInfo(_ *http.Request, p params) (map[string]any, error) {
	h.sampler.use(h.Hub)
	e, err := h.find(p)
	if err != nil {
		return nil, err
	}
	m := h.mediaItem(e, time.Now())
	m["online"] = true
	return m, nil
}

// isMediaOnline: {"online": true|false}.
func (h *Handler) isMediaOnline(_ *http.Request, p params) (map[string]any, error) {
	_, err := h.find(p)
	var ae *apiError
	if errors.As(err, &ae) && ae.code == CodeNotFound {
		return map[string]any{"online": false}, nil
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"online": true}, nil
}

// getMediaPlayerList lists the players of a stream in one schema: each
// with its connection's addresses, identifier and typeid.
func (h *Handler) getMediaPlayerList(_ *http.Request, p params) (map[string]any, error) {
	e, err := h.find(p)
	if err != nil {
		return nil, err
	}
	data := []map[string]any{}
	for _, r := range e.s.ReaderList() {
		who := r.Who()
		if schemaOf(who.Proto) != e.schema {
			continue
		}
		data = append(data, h.sockInfo(who, true))
	}
	return map[string]any{"data": data}, nil
}

// close_stream ends one stream. Without force, a stream that has players
// is left alone, as ZLMediaKit does: {"code":-1,"result":-1,"msg":"close failed"}.
func (h *Handler) closeStream(_ *http.Request, p params) (map[string]any, error) {
	e, err := h.find(p)
	if err != nil {
		return nil, err
	}
	if !h.close(e.s, p.bool("force")) {
		return map[string]any{"code": CodeOtherFailed, "result": -1, "msg": "close failed"}, nil
	}
	return map[string]any{"result": 0, "msg": "success"}, nil
}

// close_streams ends every stream the filters select. count_hit counts
// the (stream, schema) entries selected, as ZLMediaKit counts its
// MediaSources; count_closed those whose stream was closed.
func (h *Handler) closeStreams(_ *http.Request, p params) (map[string]any, error) {
	hit := h.match(p)
	force := p.bool("force")
	closed := 0
	done := map[*hub.Stream]bool{}
	for _, e := range hit {
		ok, seen := done[e.s]
		if !seen {
			ok = h.close(e.s, force)
			done[e.s] = ok
		}
		if ok {
			closed++
		}
	}
	return map[string]any{"count_hit": len(hit), "count_closed": closed}, nil
}

func (h *Handler) close(s *hub.Stream, force bool) bool {
	if !force && s.Readers() > 0 {
		return false
	}
	h.log().Info("stream closed by the API", "path", s.Path, "origin", s.Origin.String(), "force", force)
	s.Close()
	return true
}

// splitPath turns a hub path into ZLMediaKit's app and stream.
func splitPath(path string) (app, stream string) {
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return "", path
}

// mediaItem is ZLMediaKit's makeMediaSourceJson for one stream in one schema.
func (h *Handler) mediaItem(e entry, now time.Time) map[string]any {
	s := e.s
	alive := now.Sub(s.Since)
	bytesIn := s.BytesIn.Load()
	ot := originTypes[s.Origin.Proto]
	players := s.ReaderList()
	inSchema := 0
	for _, r := range players {
		if schemaOf(r.Who().Proto) == e.schema {
			inSchema++
		}
	}
	tracks := make([]map[string]any, 0, len(s.Tracks))
	for _, t := range s.Tracks {
		tracks = append(tracks, trackInfo(t))
	}
	var originSock any // null where the origin has no socket, as in ZLMediaKit
	if s.Origin.Remote != "" {
		sock := h.sockInfo(s.Origin, false)
		if s.Origin.Proto == "rtp" && h.RTP != nil {
			// RTP has no TCP session to look up: the port it arrives on is the RTP proxy's.
			for _, ss := range h.RTP.Stats().Sessions {
				if ss.Path == s.Path {
					sock["local_port"] = ss.LocalPort
				}
			}
		}
		originSock = sock
	}
	return map[string]any{
		"schema":           e.schema,
		"app":              e.app,
		"stream":           e.stream,
		"vhost":            DefaultVhost,
		"params":           s.Origin.Params,
		"readerCount":      inSchema,
		"totalReaderCount": len(players),
		"originType":       ot,
		"originTypeStr":    originNames[ot],
		"originUrl":        h.originURL(s, e.app, e.stream),
		"originSock":       originSock,
		"createStamp":      s.Since.Unix(),
		"aliveSecond":      int64(alive.Seconds()),
		"bytesSpeed":       h.sampler.bytesSpeed(s, now),
		"totalBytes":       bytesIn,
		"isRecordingMP4":   false,
		"isRecordingHLS":   false,
		"tracks":           tracks,
	}
}

// sockInfo is ZLMediaKit's fillSockInfo for who's connection: peer and
// local address and identifier (the session registry id where there is
// one), and for players the typeid.
func (h *Handler) sockInfo(who hub.Origin, typeid bool) map[string]any {
	peerIP, peerPort := splitHostPort(who.Remote)
	m := map[string]any{"peer_ip": peerIP, "peer_port": peerPort, "local_ip": "", "local_port": 0, "identifier": who.ID}
	typ := ""
	if who.Conn != "" && h.Sessions != nil {
		if in, ok := h.Sessions.Get(who.Conn); ok {
			m["local_ip"], m["local_port"] = in.LocalIP, in.LocalPort
			typ = in.Type
		}
		m["identifier"] = who.Conn
	}
	if typeid {
		if typ == "" {
			typ = sessionType(who.Proto)
		}
		m["typeid"] = zlmTypeID(typ)
	}
	return m
}

// sessionType names a protocol's session class where the connection is
// not in the registry.
func sessionType(proto string) string {
	switch proto {
	case "rtsp":
		return "RtspSession"
	case "rtmp":
		return "RtmpSession"
	case "rtp":
		return "RtpSession"
	case "srt":
		return "SRT::SrtSession" // ZLMediaKit's class, as the session registry names it
	}
	return "HttpSession"
}

// zlmTypeID is a session type as ZLMediaKit prints it: the demangled C++
// class name, mediakit::RtspSession.
func zlmTypeID(typ string) string {
	if strings.Contains(typ, "::") { // qualified already: toolkit::SessionWithSSL<mediakit::HttpSession>
		return typ
	}
	return "mediakit::" + typ
}

// originURL is the URL the stream came in by: for a push, this server's
// address (the one the publisher connected to) and the path, with the
// query; for RTP, where the packets come from.
func (h *Handler) originURL(s *hub.Stream, app, stream string) string {
	switch s.Origin.Proto {
	case "pull": // a pull proxy names its source URL, credentials redacted
		return s.Origin.ID
	case "rtp":
		return "rtp://" + s.Origin.Remote
	case "rtsp", "rtmp":
		host := s.Origin.Remote
		if s.Origin.Conn != "" && h.Sessions != nil {
			if in, ok := h.Sessions.Get(s.Origin.Conn); ok {
				host = net.JoinHostPort(in.LocalIP, strconv.Itoa(in.LocalPort))
			}
		}
		u := s.Origin.Proto + "://" + host + "/" + app + "/" + stream
		if s.Origin.Params != "" {
			u += "?" + s.Origin.Params
		}
		return u
	}
	if s.Origin.Remote != "" {
		return s.Origin.Remote
	}
	return ""
}

func splitHostPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// ZLMediaKit's codec ids (its CODEC_MAP) and track types.
const (
	trackVideo = 0
	trackAudio = 1
)

// trackInfo describes a track as ZLMediaKit's getMediaList does: codec id
// and name, and the picture size and rate or the audio format.
func trackInfo(t *hub.Track) map[string]any {
	m := map[string]any{"codec_id": -1, "codec_id_name": "Codec" + t.Format.Codec(), "codec_type": trackAudio, "ready": true}
	if t.Video {
		m["codec_type"] = trackVideo
	}
	switch f := t.Format.(type) {
	case *format.H264:
		m["codec_id"], m["codec_id_name"] = 0, "CodecH264"
		var sps h264.SPS
		if len(f.SPS) > 0 && sps.Unmarshal(f.SPS) == nil {
			m["width"], m["height"], m["fps"] = sps.Width(), sps.Height(), roundFPS(sps.FPS())
		} else {
			m["ready"] = false
		}
	case *format.H265:
		m["codec_id"], m["codec_id_name"] = 1, "CodecH265"
		var sps h265.SPS
		if len(f.SPS) > 0 && sps.Unmarshal(f.SPS) == nil {
			m["width"], m["height"], m["fps"] = sps.Width(), sps.Height(), roundFPS(sps.FPS())
		} else {
			m["ready"] = false
		}
	case *format.MPEG4Audio:
		m["codec_id"], m["codec_id_name"] = 2, "CodecAAC"
		if f.Config != nil {
			ch := f.Config.ChannelCount
			if ch == 0 {
				ch = int(f.Config.ChannelConfig)
			}
			m["sample_rate"], m["channels"], m["sample_bit"] = f.Config.SampleRate, ch, 16
		}
	case *format.G711:
		m["codec_id"], m["codec_id_name"] = 3, "CodecG711A"
		if f.MULaw {
			m["codec_id"], m["codec_id_name"] = 4, "CodecG711U"
		}
		m["sample_rate"], m["channels"], m["sample_bit"] = f.SampleRate, f.ChannelCount, 16
	case *format.Opus:
		m["codec_id"], m["codec_id_name"] = 5, "CodecOpus"
		m["sample_rate"], m["channels"], m["sample_bit"] = 48000, f.ChannelCount, 16
	case *format.VP8:
		m["codec_id"], m["codec_id_name"] = 7, "CodecVP8"
	case *format.VP9:
		m["codec_id"], m["codec_id_name"] = 8, "CodecVP9"
	case *format.AV1:
		m["codec_id"], m["codec_id_name"] = 9, "CodecAV1"
	}
	return m
}

func roundFPS(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*100) / 100
}
