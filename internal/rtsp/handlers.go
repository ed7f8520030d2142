package rtsp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/sessions"
)

const publicMethods = "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER"

func status(code base.StatusCode) response {
	return response{Response: &base.Response{StatusCode: code, Header: base.Header{}}}
}

// fail answers code and logs why at warn level, naming the request.
func (c *conn) fail(req *base.Request, code base.StatusCode, msg string, args ...any) response {
	args = append([]any{"method", string(req.Method), "url", urlString(req), "status", int(code)}, args...)
	c.log.Warn(msg, args...)
	return status(code)
}

func urlString(req *base.Request) string {
	if req.URL == nil {
		return "*"
	}
	return req.URL.CloneWithoutCredentials().String()
}

// handle answers one request. It runs on the connection's read goroutine.
func (c *conn) handle(req *base.Request) response {
	cseq, ok := req.Header["CSeq"]
	if !ok || len(cseq) != 1 {
		return c.fail(req, base.StatusBadRequest, "request without a CSeq header; answered 400")
	}
	if _, err := strconv.ParseUint(strings.TrimSpace(cseq[0]), 10, 32); err != nil {
		return c.fail(req, base.StatusBadRequest, "request with a CSeq that is not a number; answered 400", "cseq", cseq[0])
	}
	if req.Method != base.Options && req.Method != base.Announce && req.Method != base.Describe && req.Method != base.Setup {
		if sh, ok := req.Header["Session"]; ok {
			var h headers.Session
			if err := h.Unmarshal(sh); err != nil || h.Session != c.sess.snapshot().id {
				return c.fail(req, base.StatusSessionNotFound, "request names an unknown session; answered 454", "session", strings.Join(sh, ","))
			}
		}
	}
	switch req.Method {
	case base.Options:
		r := status(base.StatusOK)
		r.Header["Public"] = base.HeaderValue{publicMethods}
		return r
	case base.Describe:
		return c.describe(req)
	case base.Announce:
		return c.announce(req)
	case base.Setup:
		return c.setup(req)
	case base.Play:
		return c.play(req)
	case base.Record:
		return c.record(req)
	case base.Pause:
		return c.pause(req)
	case base.Teardown:
		c.sess.teardown(c)
		r := status(base.StatusOK)
		return r
	case base.GetParameter, base.SetParameter:
		// Keep-alive (RFC 2326 10.8); Berth has no parameters to get or set.
		return status(base.StatusOK)
	}
	return c.fail(req, base.StatusNotImplemented, "unsupported method; answered 501")
}

// streamPath turns rtsp://host/app/stream?query into "app/stream". The
// copy lets the request's URL string go: a session keeps its path for its
// life, and a substring would keep the whole URL (~80 B per player).
func streamPath(req *base.Request) string {
	if req.URL == nil {
		return ""
	}
	return strings.Clone(strings.Trim(req.URL.Path, "/"))
}

func (c *conn) origin() hub.Origin {
	return hub.Origin{Proto: "rtsp", Remote: c.remote, ID: c.sess.snapshot().id, Params: c.params, Conn: sessions.IDOf(c.nc)}
}

func (c *conn) describe(req *base.Request) response {
	path := streamPath(req)
	if r, ok := c.authorize(req, auth.Play, path); !ok {
		return r
	}
	c.params = queryParams(req)
	if r, ok := c.gate(req, auth.Play, path); !ok {
		return r
	}
	st := c.s.Hub.Get(path)
	if st == nil {
		st = c.waitStream(path)
	}
	if st == nil {
		return c.fail(req, base.StatusNotFound, "DESCRIBE of a stream that is not published; answered 404", "path", path)
	}
	sdp, err := describeSDP(st)
	if err != nil {
		return c.fail(req, base.StatusInternalServerError, "cannot build the SDP of the stream", "path", path, "err", err)
	}
	r := status(base.StatusOK)
	r.Header["Content-Type"] = base.HeaderValue{"application/sdp"}
	r.Header["Content-Base"] = base.HeaderValue{baseURL(req)}
	r.Body = sdp
	return r
}

// waitStream tells the hub a player wants a missing path (on_stream_not_found)
// and waits up to StreamWait for it to be published. The reader it gets is
// only a witness: the PLAY subscribes again.
func (c *conn) waitStream(path string) *hub.Stream {
	rd, err := c.s.Hub.SubscribeWait(context.Background(), path, hub.KindRTP, c.origin(), c.s.StreamWait)
	c.touch()
	if err != nil {
		return nil
	}
	st := rd.Stream()
	rd.Close()
	return st
}

func baseURL(req *base.Request) string {
	u := req.URL.CloneWithoutCredentials()
	u.RawQuery = ""
	s := u.String()
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s
}

func (c *conn) announce(req *base.Request) response {
	if st := c.sess.getState(); st != stateInitial {
		return c.fail(req, base.StatusMethodNotValidInThisState, "ANNOUNCE in state "+st.String()+"; answered 455")
	}
	path := streamPath(req)
	if path == "" {
		return c.fail(req, base.StatusBadRequest, "ANNOUNCE without a stream path (want rtsp://host/app/stream); answered 400")
	}
	if r, ok := c.authorize(req, auth.Publish, path); !ok {
		return r
	}
	c.params = queryParams(req)
	c.sess.ensureID()
	if r, ok := c.gate(req, auth.Publish, path); !ok {
		return r
	}
	if ct := req.Header["Content-Type"]; len(ct) == 1 && !strings.HasPrefix(strings.ToLower(ct[0]), "application/sdp") {
		return c.fail(req, base.StatusUnsupportedMediaType, "ANNOUNCE body is not SDP; answered 415", "content_type", ct[0])
	}
	desc, err := parseSDP(req.Body)
	if err != nil {
		return c.fail(req, base.StatusBadRequest, "ANNOUNCE carries an SDP that does not parse; answered 400", "path", path, "err", err)
	}
	tracks := make([]*hub.Track, len(desc.Medias))
	keys := make([]codec.KeyDetector, len(desc.Medias))
	for i, m := range desc.Medias {
		tracks[i] = &hub.Track{Format: m.Formats[0], Media: m, Video: m.Type == description.MediaTypeVideo}
		keys[i].Codec = codecName(m.Formats[0].Codec())
	}
	c.sess.ensureID()
	pub, err := c.s.Hub.Publish(path, c.origin(), hub.KindRTP, tracks, req.Body)
	if err != nil {
		var busy *hub.BusyError
		if errors.As(err, &busy) {
			return c.fail(req, base.StatusNotAcceptable, "publish refused: the path already has a publisher; answered 406",
				"path", path, "holder", busy.Holder.String(), "since", busy.Since.Format("15:04:05"),
				"fix", "stop the other publisher, push to another path, or set [general] allow_takeover=1")
		}
		return c.fail(req, base.StatusServiceUnavailable, "publish refused", "path", path, "err", err)
	}
	left := new(atomic.Bool)
	c.sess.mu.Lock()
	if c.sess.publishing == nil {
		c.sess.publishing = new(publishing)
	}
	c.sess.path, c.sess.desc, c.sess.pub, c.sess.keys = path, desc, pub, keys
	c.sess.pubLeft = left
	c.sess.state = statePreRecord
	c.sess.mu.Unlock()
	go func() {
		// The stream ended without the publisher leaving (the API's
		// close_stream, a takeover, shutdown): drop the publisher, as
		// ZLMediaKit does, rather than take packets for a stream that is gone.
		<-pub.Done()
		if !left.Load() {
			c.close("the stream was closed (API close_stream, a takeover or shutdown)")
		}
	}()
	c.log.Debug("announce accepted", "path", path, "tracks", len(tracks))
	return status(base.StatusOK)
}

func codecName(name string) string {
	switch strings.ToUpper(name) {
	case "H264":
		return codec.H264
	case "H265":
		return codec.H265
	}
	return name
}

func parseSDP(body []byte) (*description.Session, error) {
	if len(body) == 0 {
		return nil, errors.New("empty body")
	}
	ssd, err := sdpunmarshaler.Unmarshal(body)
	if err != nil {
		return nil, err
	}
	var desc description.Session
	if err := desc.Unmarshal2(ssd); err != nil {
		return nil, err
	}
	if len(desc.Medias) == 0 {
		return nil, errors.New("no media")
	}
	for i, m := range desc.Medias {
		if len(m.Formats) == 0 {
			return nil, fmt.Errorf("media %d has no format", i)
		}
	}
	return &desc, nil
}

func (c *conn) setup(req *base.Request) response {
	var th headers.Transport
	if err := th.Unmarshal(req.Header["Transport"]); err != nil {
		return c.fail(req, base.StatusBadRequest, "SETUP with a Transport header that does not parse; answered 400", "err", err)
	}
	if th.Delivery != nil && *th.Delivery == headers.TransportDeliveryMulticast {
		return c.fail(req, base.StatusUnsupportedTransport, "multicast is not supported; answered 461")
	}
	if sh, ok := req.Header["Session"]; ok {
		var h headers.Session
		if err := h.Unmarshal(sh); err != nil || (h.Session != c.sess.snapshot().id) {
			return c.fail(req, base.StatusSessionNotFound, "SETUP names an unknown session; answered 454", "session", strings.Join(sh, ","))
		}
	}
	st := c.sess.getState()
	record := st == statePreRecord
	switch {
	case record && th.Mode != nil && *th.Mode != headers.TransportModeRecord:
		return c.fail(req, base.StatusBadRequest, "SETUP for play on a session that announced; answered 400")
	case st == statePlay || st == stateRecord:
		return c.fail(req, base.StatusMethodNotValidInThisState, "SETUP while media flows; answered 455")
	case !record && th.Mode != nil && *th.Mode == headers.TransportModeRecord:
		return c.fail(req, base.StatusMethodNotValidInThisState, "SETUP for record without ANNOUNCE; answered 455")
	}

	var ntracks, index int
	if record {
		ntracks = len(c.sess.desc.Medias)
		index = recordTrack(c.sess.desc, req)
		if index < 0 {
			return c.fail(req, base.StatusNotFound, "SETUP names no media of the announced SDP; answered 404", "path", c.sess.path)
		}
	} else {
		path, idx, ok := playTrack(req)
		if !ok {
			return c.fail(req, base.StatusBadRequest, "SETUP URL names no track (want .../app/stream/trackID=N); answered 400")
		}
		if c.sess.path != "" && c.sess.path != path {
			return c.fail(req, base.StatusAggregateOperationNotAllowed, "SETUP of a second stream in one session; answered 459",
				"path", path, "session_path", c.sess.path)
		}
		if r, ok := c.authorize(req, auth.Play, path); !ok {
			return r
		}
		if c.params == "" {
			c.params = queryParams(req)
		}
		if r, ok := c.gate(req, auth.Play, path); !ok {
			return r
		}
		stream := c.s.Hub.Get(path)
		if stream == nil {
			return c.fail(req, base.StatusNotFound, "SETUP of a stream that is not published; answered 404", "path", path)
		}
		if idx >= len(stream.Tracks) {
			return c.fail(req, base.StatusNotFound, "SETUP of a track the stream does not have; answered 404", "path", path, "track", idx)
		}
		ntracks, index = len(stream.Tracks), idx
		c.sess.mu.Lock()
		c.sess.path, c.sess.stream = path, stream
		c.sess.mu.Unlock()
	}

	udp := th.Protocol == headers.TransportProtocolUDP
	if _, overTLS := c.nc.(*tls.Conn); udp && overTLS {
		// RTSPS protects the RTP it interleaves; plain RTP over UDP would
		// leave the media in the clear, so RTSPS takes TCP transport only.
		return c.fail(req, base.StatusUnsupportedTransport, "UDP SETUP over RTSPS would send the media unencrypted; answered 461 (the client should use TCP: ffmpeg -rtsp_transport tcp)")
	}
	if len(c.sess.tracks) > 0 && c.sess.udp != udp {
		return c.fail(req, base.StatusUnsupportedTransport, "SETUP mixes UDP and TCP in one session; answered 461")
	}
	t := &trackSetup{index: index}
	if c.sess.stream != nil && c.sess.stream.Tracks[index].Format != nil {
		t.clockRate = c.sess.stream.Tracks[index].Format.ClockRate()
	}
	reply := headers.Transport{Protocol: th.Protocol}
	uni := headers.TransportDeliveryUnicast
	reply.Delivery = &uni
	if udp {
		if th.ClientPorts == nil {
			return c.fail(req, base.StatusUnsupportedTransport, "UDP SETUP without client_port; answered 461")
		}
		local := c.nc.LocalAddr().(*net.TCPAddr).IP
		rip := c.nc.RemoteAddr().(*net.TCPAddr).IP
		rtpc, rtcpc, err := ports.ListenUDPPair(local, c.s.UDPRange.Lo, c.s.UDPRange.Hi)
		if err != nil {
			return c.fail(req, base.StatusServiceUnavailable, "cannot open a UDP port pair; answered 503", "err", err)
		}
		t.rtp, t.rtcp = rtpc, rtcpc
		t.clientRTP = &net.UDPAddr{IP: rip, Port: th.ClientPorts[0]}
		t.clientRTCP = &net.UDPAddr{IP: rip, Port: th.ClientPorts[1]}
		t.rtpOut, t.rtcpOut = fanout.NewUDPSender(rtpc, t.clientRTP), fanout.NewUDPSender(rtcpc, t.clientRTCP)
		reply.ClientPorts = th.ClientPorts
		sp := [2]int{rtpc.LocalAddr().(*net.UDPAddr).Port, rtcpc.LocalAddr().(*net.UDPAddr).Port}
		reply.ServerPorts = &sp
	} else {
		ch := [2]int{2 * index, 2*index + 1}
		if th.InterleavedIDs != nil {
			ch = *th.InterleavedIDs
		}
		if ch[0] < 0 || ch[0] > 254 {
			return c.fail(req, base.StatusBadRequest, "interleaved channel out of range; answered 400")
		}
		t.channel = ch[0]
		reply.InterleavedIDs = &ch
	}
	if th.Mode != nil {
		reply.Mode = th.Mode
	}
	c.sess.ensureID()
	c.sess.mu.Lock()
	c.sess.udp = udp
	c.sess.setTrack(t, ntracks)
	if !udp && record {
		if c.sess.byChan == nil {
			c.sess.byChan = new([256]int16)
		}
		c.sess.byChan[t.channel] = int16(index + 1)
		// The RTCP channel carries the publisher's sender reports, which
		// tie the tracks' clocks together (RFC 3550 6.4.1). Negative marks
		// RTCP; a channel some track's RTP already uses keeps that use.
		if rc := rtcpChannel(t.channel, th.InterleavedIDs); rc >= 0 && c.sess.byChan[rc] <= 0 {
			c.sess.byChan[rc] = -int16(index + 1)
		}
	}
	if !record {
		c.sess.state = statePrePlay
	}
	c.sess.mu.Unlock()
	r := status(base.StatusOK)
	r.Header["Transport"] = reply.Marshal()
	return r
}

// recordTrack finds the announced media a SETUP URL names through its
// control attribute (relative, like ffmpeg's "streamid=0", or absolute).
func recordTrack(desc *description.Session, req *base.Request) int {
	u := req.URL.CloneWithoutCredentials()
	if _, ctl := splitControl(u.RawQuery); ctl != "" {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/" + ctl
	}
	u.RawQuery = ""
	s := strings.TrimSuffix(u.String(), "/")
	for i, m := range desc.Medias {
		ctl := strings.TrimSuffix(m.Control, "/")
		if ctl == "" || ctl == "*" {
			continue
		}
		if s == ctl || strings.HasSuffix(s, "/"+ctl) {
			return i
		}
	}
	if len(desc.Medias) == 1 {
		return 0
	}
	return -1
}

// splitControl undoes a client's appending of a track's control to a URL
// that has a query (ffmpeg's SETUP of rtsp://h/app/stream?token=1 is
// .../stream?token=1/streamid=0): the query, and the control ("" if none).
func splitControl(rawQuery string) (query, control string) {
	i := strings.LastIndexByte(rawQuery, '/')
	if i < 0 {
		return rawQuery, ""
	}
	last := rawQuery[i+1:]
	for _, prefix := range []string{"trackID=", "streamid=", "track"} {
		if strings.HasPrefix(last, prefix) {
			return rawQuery[:i], last
		}
	}
	return rawQuery, ""
}

// playTrack splits a play SETUP URL .../app/stream/trackID=N into the path and N.
func playTrack(req *base.Request) (string, int, bool) {
	p := streamPath(req)
	if _, ctl := splitControl(req.URL.RawQuery); ctl != "" {
		p += "/" + ctl
	}
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", 0, false
	}
	last := p[i+1:]
	for _, prefix := range []string{"trackID=", "streamid=", "track"} {
		if n, err := strconv.Atoi(strings.TrimPrefix(last, prefix)); err == nil && strings.HasPrefix(last, prefix) && n >= 0 {
			return p[:i], n, true
		}
	}
	return "", 0, false
}

func (c *conn) play(req *base.Request) response {
	st := c.sess.getState()
	if st == statePlay {
		return status(base.StatusOK) // a repeated PLAY is a keep-alive for some clients
	}
	if st != statePrePlay {
		return c.fail(req, base.StatusMethodNotValidInThisState, "PLAY in state "+st.String()+"; answered 455")
	}
	start, resp, ok := c.playControl(req)
	if !ok {
		return resp
	}
	rd, err := c.s.Hub.Subscribe(c.sess.path, hub.KindRTP, c.origin())
	if err != nil {
		if errors.Is(err, hub.ErrNotFound) || errors.Is(err, hub.ErrEnded) {
			return c.fail(req, base.StatusNotFound, "PLAY of a stream that is no longer published; answered 404", "path", c.sess.path)
		}
		return c.fail(req, base.StatusServiceUnavailable, "cannot read the stream", "path", c.sess.path, "err", err)
	}
	if rd.Stream() != c.sess.stream {
		// The publisher was replaced between SETUP and PLAY; its tracks may differ.
		rd.Close()
		return c.fail(req, base.StatusNotFound, "the stream was republished since SETUP; answered 404, set up again", "path", c.sess.path)
	}
	c.sess.mu.Lock()
	c.sess.reader = rd
	c.sess.playDone = make(chan struct{})
	c.sess.state = statePlay
	c.sess.mu.Unlock()
	r := status(base.StatusOK)
	r.Header["Range"] = base.HeaderValue{fmt.Sprintf("npt=%.3f-", start.Seconds())}
	if sc := req.Header["Scale"]; len(sc) > 0 && c.isPlayback() {
		r.Header["Scale"] = sc // the speed taken (RFC 2326 §12.34)
	}
	r.after = func() {
		c.log.Info("play started", "path", c.sess.path, "transport", transportName(c.sess.udp), "tracks", countTracks(c.sess.tracks))
		c.startPlay(rd, c.sess.playDone)
	}
	return r
}

func (c *conn) record(req *base.Request) response {
	if st := c.sess.getState(); st != statePreRecord {
		return c.fail(req, base.StatusMethodNotValidInThisState, "RECORD in state "+st.String()+"; answered 455")
	}
	if countTracks(c.sess.tracks) == 0 {
		return c.fail(req, base.StatusMethodNotValidInThisState, "RECORD before any SETUP; answered 455")
	}
	c.sess.setState(stateRecord)
	if c.sess.udp {
		for _, t := range c.sess.tracks {
			if t != nil {
				go c.readUDP(t, true)
				go c.readUDP(t, false)
			}
		}
	}
	c.log.Info("publish started", "path", c.sess.path, "transport", transportName(c.sess.udp),
		"tracks", describeTracks(c.sess.pub.Stream().Tracks))
	return status(base.StatusOK)
}

func (c *conn) pause(req *base.Request) response {
	switch c.sess.getState() {
	case statePlay:
		c.sess.stopPlay()
		c.sess.setState(statePrePlay)
		c.pausePlayback(true)
		return status(base.StatusOK)
	case statePrePlay:
		return status(base.StatusOK)
	}
	return c.fail(req, base.StatusMethodNotValidInThisState, "PAUSE outside play; answered 455")
}

func transportName(udp bool) string {
	if udp {
		return "udp"
	}
	return "tcp"
}

func countTracks(ts []*trackSetup) int {
	n := 0
	for _, t := range ts {
		if t != nil {
			n++
		}
	}
	return n
}

func describeTracks(ts []*hub.Track) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s/%d", t.Format.Codec(), t.Format.ClockRate()))
	}
	return strings.Join(parts, ",")
}
