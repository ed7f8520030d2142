// Reading a server's SDP so that one media Berth cannot read does not cost
// the others.

package rtspclient

import (
	"fmt"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"
	psdp "github.com/pion/sdp/v3"
)

// UnreadableMedia is a media of a server's SDP that Describe left out
// because it does not parse (a dynamic payload type without a=rtpmap has no
// clock rate, say).
type UnreadableMedia struct {
	Index  int    // in the server's SDP, from 0
	Type   string // "video", "audio", "application", ...
	Format string // the first format's rtpmap, or "payload type N"
	Err    error
}

func (u UnreadableMedia) String() string {
	return fmt.Sprintf("media %d %s %s (its SDP does not parse: %v)", u.Index+1, u.Type, u.Format, u.Err)
}

// parseSDP reads a DESCRIBE body. gortsplib refuses a whole description for
// one media it cannot read; cameras describe metadata and audio tracks
// carelessly, and their video still plays, so those medias are left out
// and listed, and only a description with no readable media (or a broken
// session part) fails.
func parseSDP(body []byte) (*psdp.SessionDescription, *description.Session, []UnreadableMedia, error) {
	ssd, err := sdpunmarshaler.Unmarshal(body)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the server's SDP does not parse: %w", err)
	}
	var d description.Session
	first := d.Unmarshal2(ssd)
	if first == nil {
		return ssd, &d, nil, nil
	}
	kept := *ssd
	kept.MediaDescriptions = nil
	var bad []UnreadableMedia
	for i, md := range ssd.MediaDescriptions {
		var m description.Media
		if err := m.Unmarshal(md); err != nil {
			bad = append(bad, UnreadableMedia{Index: i, Type: md.MediaName.Media, Format: firstFormat(md), Err: err})
			continue
		}
		kept.MediaDescriptions = append(kept.MediaDescriptions, md)
	}
	if len(bad) == 0 || len(kept.MediaDescriptions) == 0 {
		return nil, nil, nil, fmt.Errorf("the server's SDP is not usable: %w", first)
	}
	d = description.Session{}
	if err := d.Unmarshal2(&kept); err != nil {
		return nil, nil, nil, fmt.Errorf("the server's SDP is not usable: %w", first)
	}
	return ssd, &d, bad, nil
}

// firstFormat names a media description's first format for a log line.
func firstFormat(md *psdp.MediaDescription) string {
	if len(md.MediaName.Formats) == 0 {
		return "without formats"
	}
	pt := md.MediaName.Formats[0]
	for _, a := range md.Attributes {
		if a.Key == "rtpmap" && strings.HasPrefix(a.Value, pt+" ") {
			return strings.TrimSpace(a.Value[len(pt)+1:])
		}
	}
	return "payload type " + pt
}
