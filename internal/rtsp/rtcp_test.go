package rtsp

import (
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/berthmedia/berth/internal/codec"
)

func marshalRTCP(t testing.TB, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type srCase struct {
	name string
	pkt  []byte
	ok   bool
	want senderReport
}

func senderReportCases(t testing.TB) []srCase {
	at := time.Date(2025, 3, 4, 5, 6, 7, 500_000_000, time.UTC)
	sr := &rtcp.SenderReport{SSRC: 0x1234, NTPTime: codec.NTPTime(at), RTPTime: 0xfffffff0, PacketCount: 9, OctetCount: 900}
	rr := &rtcp.ReceiverReport{SSRC: 7}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 0x1234,
		Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "ffmpeg"}}}}}
	want := senderReport{SSRC: 0x1234, NTP: at, RTPTime: 0xfffffff0}
	full := marshalRTCP(t, sr, sdes)
	return []srCase{
		{"sender report", marshalRTCP(t, sr), true, want},
		{"compound with SDES, as ffmpeg sends", full, true, want},
		{"receiver report first", marshalRTCP(t, rr, sr), true, want},
		{"receiver report only", marshalRTCP(t, rr), false, senderReport{}},
		{"truncated", full[:len(full)-3], false, senderReport{}},
		{"empty", nil, false, senderReport{}},
		{"not RTCP", []byte{0x80, 0x60, 0, 1, 0, 0, 0, 0}, false, senderReport{}},
	}
}

func TestParseSenderReport(t *testing.T) {
	for _, c := range senderReportCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseSenderReport(c.pkt)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if got.SSRC != c.want.SSRC || got.RTPTime != c.want.RTPTime {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			// NTP's fraction is 2^-32 s: the round trip loses under a ns.
			if d := got.NTP.Sub(c.want.NTP); d < -time.Nanosecond || d > time.Nanosecond {
				t.Errorf("NTP %v, want %v", got.NTP, c.want.NTP)
			}
		})
	}
}

func TestNTPTimeRoundTrips(t *testing.T) {
	for _, at := range []time.Time{
		time.Unix(0, 0).UTC(),
		time.Date(2036, 2, 7, 6, 28, 15, 999_999_999, time.UTC), // the last second of NTP era 0
		time.Date(2026, 11, 24, 7, 0, 0, 123_456_789, time.UTC),
	} {
		got := codec.NTPToTime(codec.NTPTime(at))
		if d := got.Sub(at); d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("NTPToTime(NTPTime(%v)) = %v", at, got)
		}
	}
}

func TestRTCPChannelOfAnInterleavedPair(t *testing.T) {
	cases := []struct {
		rtp  int
		ids  *[2]int
		want int
	}{
		{0, nil, 1},
		{2, &[2]int{2, 3}, 3},
		{4, &[2]int{4, 9}, 9},
		{6, &[2]int{6, 6}, 7}, // a client that names one channel
		{255, nil, -1},
		{10, &[2]int{10, 300}, -1},
	}
	for _, c := range cases {
		if got := rtcpChannel(c.rtp, c.ids); got != c.want {
			t.Errorf("rtcpChannel(%d, %v) = %d, want %d", c.rtp, c.ids, got, c.want)
		}
	}
}

// FuzzParseSenderReport: publishers' RTCP is untrusted; parsing never
// panics.
func FuzzParseSenderReport(f *testing.F) {
	for _, c := range senderReportCases(f) {
		f.Add(c.pkt)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseSenderReport(b)
	})
}
