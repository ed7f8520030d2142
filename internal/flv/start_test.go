package flv

import (
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// TestStartDropsAudioFromBeforeTheKeyframe: after the keyframe a reader
// starts on, audio that begins more than 50 ms before it is held back
// (ffmpeg's RTSP packs ~100 ms of AAC into one packet); the first audio
// sent starts the audio, and after it nothing is held back, even a frame
// whose time steps back.
func TestStartDropsAudioFromBeforeTheKeyframe(t *testing.T) {
	aac := codec.AACTrackConfig(&mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2})
	m, err := NewMuxer([]*hub.Track{codec.H264Track(testSPS, testPPS), aac})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	for i, c := range []struct {
		track int
		dts   time.Duration
		sent  bool
	}{
		{0, 1000 * ms, true}, // the keyframe: the start
		{1, 880 * ms, false}, // 120 ms before it
		{1, 930 * ms, false}, // 70 ms before
		{1, 960 * ms, true},  // 40 ms before: the audio starts
		{1, 900 * ms, true},  // a step back later is not the start's business
		{0, 1040 * ms, true}, // video goes on
		{1, 1000 * ms, true},
	} {
		f := &hub.Frame{Track: c.track, DTS: c.dts, PTS: c.dts, Key: i == 0, AU: [][]byte{{0x65, 0x88}}}
		if c.track == 1 {
			f.AU = [][]byte{{0x21, 0x00}}
		}
		if _, ok := m.Start(f); ok != c.sent {
			t.Errorf("frame %d (track %d at %v): sent %v, want %v", i, c.track, c.dts, ok, c.sent)
		}
	}
}
