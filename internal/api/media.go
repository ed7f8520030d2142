package api

import (
	"math"
	"net"
	"net/http"
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

// getMediaList lists every live stream, once per schema it can be read in,
// filtered by the optional schema, vhost, app and stream parameters.
// Reader counts are per stream: the hub does not split them by protocol.
func (h *Handler) getMediaList(_ *http.Request, p params) (map[string]any, error) {
	schemas := h.Schemas
	if len(schemas) == 0 {
		schemas = []string{"rtsp", "rtmp"}
	}
	data := []map[string]any{}
	if h.Hub == nil {
		return map[string]any{"data": data}, nil
	}
	now := time.Now()
	for _, s := range h.Hub.Streams() {
		app, stream := splitPath(s.Path)
		if (p["app"] != "" && p["app"] != app) || (p["stream"] != "" && p["stream"] != stream) ||
			(p["vhost"] != "" && p["vhost"] != DefaultVhost) {
			continue
		}
		item := mediaItem(s, app, stream, now)
		for _, schema := range schemas {
			if p["schema"] != "" && p["schema"] != schema {
				continue
			}
			e := make(map[string]any, len(item)+1)
			for k, v := range item {
				e[k] = v
			}
			e["schema"] = schema
			data = append(data, e)
		}
	}
	return map[string]any{"data": data}, nil
}

// splitPath turns a hub path into ZLMediaKit's app and stream.
func splitPath(path string) (app, stream string) {
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return "", path
}

func mediaItem(s *hub.Stream, app, stream string, now time.Time) map[string]any {
	alive := now.Sub(s.Since)
	bytesIn := s.BytesIn.Load()
	speed := uint64(0)
	if sec := alive.Seconds(); sec >= 1 {
		speed = uint64(float64(bytesIn) / sec)
	}
	ot := originTypes[s.Origin.Proto]
	readers := s.Readers()
	tracks := make([]map[string]any, 0, len(s.Tracks))
	for _, t := range s.Tracks {
		tracks = append(tracks, trackInfo(t))
	}
	peerIP, peerPort := splitHostPort(s.Origin.Remote)
	return map[string]any{
		"app":              app,
		"stream":           stream,
		"vhost":            DefaultVhost,
		"readerCount":      readers,
		"totalReaderCount": readers,
		"originType":       ot,
		"originTypeStr":    originNames[ot],
		"originUrl":        originURL(s, app, stream),
		"originSock": map[string]any{
			"identifier": s.Origin.ID,
			"peer_ip":    peerIP,
			"peer_port":  peerPort,
		},
		"createStamp": s.Since.Unix(),
		"aliveSecond": int64(alive.Seconds()),
		"bytesSpeed":  speed,
		"totalBytes":  bytesIn,
		"bytesIn":     bytesIn,
		"tracks":      tracks,
	}
}

func originURL(s *hub.Stream, app, stream string) string {
	switch s.Origin.Proto {
	case "rtp":
		return "rtp://" + s.Origin.Remote
	case "rtsp", "rtmp":
		return s.Origin.Proto + "://" + s.Origin.Remote + "/" + app + "/" + stream
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
