package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"
)

// isWHEP tells a WHEP read URL (Berth's /index/api/whep, or any URL with
// whep in its path).
func isWHEP(rawURL string) bool {
	p, _, _ := strings.Cut(rawURL, "?")
	return (strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://")) && strings.Contains(p, "whep")
}

// latencyWHEP plays READ_URL over WHEP with a pion peer and reports the
// delay of each video frame's first stamp (a WebRTC player gets frames
// packetized again, so, as for RTMP and FLV, a sample includes the server
// waiting for the whole frame).
func latencyWHEP(ctx context.Context, cfg LatencyConfig, onDelay func(time.Duration)) error {
	m := &pion.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return err
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(m, ir); err != nil {
		return err
	}
	var se pion.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	pc, err := pion.NewAPI(pion.WithMediaEngine(m), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)).NewPeerConnection(pion.Configuration{})
	if err != nil {
		return err
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
		return err
	}
	failed := make(chan error, 1)
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		var last uint32
		seen := false
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				select {
				case failed <- err:
				default:
				}
				return
			}
			if seen && pkt.Timestamp == last {
				continue // this frame's delay is counted
			}
			if d, ok := findStamp(pkt.Payload); ok {
				onDelay(d)
				seen, last = true, pkt.Timestamp
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.ReadURL, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/sdp")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %s: %s", cfg.ReadURL, res.Status, strings.TrimSpace(string(body)))
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return fmt.Errorf("the WHEP answer: %w", err)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}
