package rtsp

import (
	"bytes"
	"strconv"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/berthmedia/berth/internal/hub"
)

// describeSDP is the SDP a player gets. A stream that came as RTP keeps its
// publisher's SDP byte for byte but for the control attributes, which are
// rewritten to trackID=N so that SETUP URLs resolve against our
// Content-Base, whatever the publisher wrote (absolute URLs to its own host,
// say). Other streams get an SDP generated from their tracks.
func describeSDP(st *hub.Stream) ([]byte, error) {
	if st.SDP != nil {
		return rewriteControls(st.SDP), nil
	}
	desc := description.Session{Title: "Berth"}
	for i, t := range st.Tracks {
		m := &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{t.Format}}
		if t.Video {
			m.Type = description.MediaTypeVideo
		}
		m.Control = "trackID=" + strconv.Itoa(i)
		desc.Medias = append(desc.Medias, m)
	}
	return desc.Marshal()
}

// rewriteControls replaces every media-level a=control with trackID=N and
// drops the session-level one.
func rewriteControls(sdp []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(sdp) + 64)
	media := -1
	for len(sdp) > 0 {
		line := sdp
		rest := []byte(nil)
		if i := bytes.IndexByte(sdp, '\n'); i >= 0 {
			line, rest = sdp[:i+1], sdp[i+1:]
		}
		sdp = rest
		text := bytes.TrimRight(line, "\r\n")
		switch {
		case bytes.HasPrefix(text, []byte("m=")):
			media++
			out.Write(text)
			out.WriteString("\r\n")
			out.WriteString("a=control:trackID=" + strconv.Itoa(media) + "\r\n")
		case bytes.HasPrefix(text, []byte("a=control:")):
			// dropped: session-level, or replaced above
		case len(text) == 0:
		default:
			out.Write(text)
			out.WriteString("\r\n")
		}
	}
	return out.Bytes()
}
