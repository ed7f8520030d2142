package webrtc

import "testing"

// TestRequestKeyframeReachesOnlyAWHIPPublisher: a player's PLI is handed
// to the WHIP publisher of its path (one pending request at most) and to
// nobody for a path published otherwise.
func TestRequestKeyframeReachesOnlyAWHIPPublisher(t *testing.T) {
	s := &Server{sessions: map[string]*session{}, pubs: map[string]*session{}}
	pub := &session{id: "a", publish: true, path: "live/w", keyframe: make(chan struct{}, 1)}
	s.pubs[pub.path] = pub
	for _, c := range []struct {
		path string
		want bool
	}{{"live/w", true}, {"live/w", true}, {"live/rtsp", false}} {
		if got := s.requestKeyframe(c.path); got != c.want {
			t.Errorf("requestKeyframe(%s) = %v, want %v", c.path, got, c.want)
		}
	}
	if len(pub.keyframe) != 1 {
		t.Errorf("%d requests pending, want 1 (a second one while one waits is merged)", len(pub.keyframe))
	}
}
