package hub

import (
	"testing"
	"time"
)

// rtpPacket is a 12-byte RTP header with or without the marker bit.
func rtpPacket(marker bool) []byte {
	b := make([]byte, 12)
	b[0], b[1] = 0x80, 96
	if marker {
		b[1] |= 0x80
	}
	return b
}

// TestWakeUpHeldUntilVideoFrameEnds: a parked reader is not woken for the
// first packets of a video frame (no marker, on a track that uses markers),
// only for the packet that ends it, an audio packet, or when the hold
// limits run out.
func TestWakeUpHeldUntilVideoFrameEnds(t *testing.T) {
	type pkt struct {
		track  int
		marker bool
		after  time.Duration // Recv after the first packet of the case
		wakes  bool
	}
	for _, c := range []struct {
		name    string
		primed  bool // a marked video packet went first
		packets []pkt
	}{
		{"frame end wakes", true, []pkt{{0, false, 0, false}, {0, false, 0, false}, {0, true, 0, true}}},
		{"audio wakes", true, []pkt{{0, false, 0, false}, {1, false, 0, true}}},
		{"track without markers is not held", false, []pkt{{0, false, 0, true}}},
		{"held at most maxHeldTime", true, []pkt{{0, false, 0, false}, {0, false, maxHeldTime, true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, _ := newTestHub(t, Options{})
			p := mustPublish(t, h, "live/a", videoTracks)
			r := mustSubscribe(t, h, "live/a", KindRTP)
			ring := p.Stream().views[KindRTP].ring
			t0 := time.Now()
			p.Write(NewRTPFrame(0, rtpPacket(c.primed), true, t0))
			if _, err := readNow(t, r); err != nil {
				t.Fatal(err)
			}
			var want []uint64
			var blocked <-chan readResult
			for i, pk := range c.packets {
				if blocked == nil {
					blocked = readAsync(r)
					pollUntil(t, "reader parked", func() bool { return ring.nparked.Load() == 1 })
				}
				f := NewRTPFrame(pk.track, rtpPacket(pk.marker), false, t0.Add(pk.after))
				p.Write(f)
				want = append(want, f.seq)
				// wakeAll empties the parked list before Write returns
				// (fewer than inlineWakeMax readers), so this is exact.
				if woke := ring.nparked.Load() == 0; woke != pk.wakes {
					t.Fatalf("packet %d: woke = %v, want %v", i, woke, pk.wakes)
				}
				if pk.wakes {
					if res := await(t, blocked, 2*time.Second); !eq(res.seqs, want) {
						t.Fatalf("packet %d: read %v, want %v", i, res.seqs, want)
					}
					blocked, want = nil, nil
				}
			}
			if blocked != nil {
				t.Fatal("the case must end with a wake-up")
			}
		})
	}
}

// TestFrameEndWakesWithoutFlush: the packet that ends a video frame wakes
// readers even when appended without a flush, so a frame's held first
// packets never wait for the next frame.
func TestFrameEndWakesWithoutFlush(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	p := mustPublish(t, h, "live/a", videoTracks)
	r := mustSubscribe(t, h, "live/a", KindRTP)
	ring := p.Stream().views[KindRTP].ring
	p.Write(NewRTPFrame(0, rtpPacket(true), true, time.Now()))
	if _, err := readNow(t, r); err != nil {
		t.Fatal(err)
	}
	blocked := readAsync(r)
	pollUntil(t, "reader parked", func() bool { return ring.nparked.Load() == 1 })
	p.Append(NewRTPFrame(0, rtpPacket(false), false, time.Now()))
	p.Flush() // held: mid-frame
	p.Append(NewRTPFrame(0, rtpPacket(true), false, time.Now()))
	if res := await(t, blocked, 2*time.Second); len(res.seqs) != 2 {
		t.Fatalf("read %v, want the frame's 2 packets", res.seqs)
	}
}
