package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/berthmedia/berth/internal/rtmp"
)

// The synthetic stream over RTMP: the same H.264 frames as over RTSP (the
// same sizes, a keyframe per second), each an FLV video tag body (an AVC
// NALU of 4-byte length), after the AVC sequence header with the built
// SPS and PPS. Video only.

// FLV video tag bytes (FLV 10.1 E.4.3.1).
const (
	flvKeyAVC   = 0x17 // keyframe, codec 7 (AVC)
	flvInterAVC = 0x27 // inter frame, AVC
	flvAVCSeq   = 0    // AVCPacketType: sequence header
	flvAVCNALU  = 1    // AVCPacketType: NALUs
	rtmpVideo   = 9    // message type of video
)

// synthAVCConfig is the AVCDecoderConfigurationRecord (ISO 14496-15
// 5.3.3.1) of the synthetic SPS and PPS, with 4-byte NALU lengths.
func synthAVCConfig() []byte {
	sps, pps := synthSPS, synthPPS
	b := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	return append(b, pps...)
}

// synthAVCSequenceHeader is the FLV video tag body announcing
// synthAVCConfig (AVCPacketType 0, composition time 0).
func synthAVCSequenceHeader() []byte {
	return append([]byte{flvKeyAVC, flvAVCSeq, 0, 0, 0}, synthAVCConfig()...)
}

// synthTag is the FLV video tag body of frame k of a stream of
// bytesPerFrame, in buf (reused).
func synthTag(buf []byte, k, bytesPerFrame int) []byte {
	key := k%synthGOP == 0
	size := bytesPerFrame * (synthGOP - 4) / (synthGOP - 1)
	head, nal := byte(flvInterAVC), byte(0x41) // NRI 2, non-IDR slice
	if key {
		size, head, nal = 4*bytesPerFrame, flvKeyAVC, 0x65 // IDR slice
	}
	buf = append(buf[:0], head, flvAVCNALU, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(1+size))
	buf = append(buf, nal)
	for range size {
		buf = append(buf, 0xab) // never 00 00 0x, which would read as a start code
	}
	return buf
}

// publishSynthRTMP publishes the synthetic stream to an RTMP URL at
// real-time speed until ctx ends. ready is called once publish succeeded.
func publishSynthRTMP(ctx context.Context, rawURL string, bitsPerSec float64, st *pubStats, ready func()) error {
	ru, err := parseRTMPURL(rawURL)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := rtmp.Dial(dctx, ru.host, false)
	if err != nil {
		return fmt.Errorf("RTMP %s: %w", ru.host, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.Conn().SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Connect(ru.app, ru.tcURL); err != nil {
		return fmt.Errorf("RTMP connect %s: %w", rawURL, err)
	}
	status, err := c.PublishStatus(ru.name)
	if err != nil {
		return fmt.Errorf("RTMP publish %s: %w", rawURL, err)
	}
	if status.Code != "NetStream.Publish.Start" {
		return fmt.Errorf("RTMP publish %s: server answered %s", rawURL, status.Code)
	}
	c.Conn().SetDeadline(time.Time{})
	if err := c.SetPublishChunkSize(); err != nil {
		return err
	}
	if ready != nil {
		ready()
	}
	// What the server sends now (acknowledgements, pings) is read and
	// dropped, so its socket never fills.
	go func() {
		for {
			if _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	send := func(ts uint32, body []byte) error {
		c.Conn().SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.SendMediaChunked(rtmpVideo, ts, body); err != nil {
			return err
		}
		st.bytes.Add(uint64(len(body)))
		st.packets.Add(1)
		return nil
	}
	if err := send(0, synthAVCSequenceHeader()); err != nil {
		return fmt.Errorf("publishing to %s: %w", rawURL, err)
	}
	bytesPerFrame := max(int(bitsPerSec/8/synthFPS), 64)
	var buf []byte
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 0; ; k++ {
		buf = synthTag(buf, k, bytesPerFrame)
		if err := send(uint32(k*1000/synthFPS), buf); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("publishing to %s: %w", rawURL, err)
		}
		timer.Reset(time.Until(start.Add(time.Duration(k+1) * time.Second / synthFPS)))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
}
