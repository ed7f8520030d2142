package bench

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// readerStats is one reader's counters. Each reader owns one, so the
// atomics are uncontended; the reporter sums them once a second.
type readerStats struct {
	bytes     atomic.Uint64
	packets   atomic.Uint64
	lost      atomic.Uint64
	reordered atomic.Uint64
	frames    atomic.Uint64 // video frames: RTP marker bits on the video track, FLV/RTMP coded video tags
	_         [24]byte      // keep neighbouring readers' counters off this cache line
}

// seqTrack checks one RTP track's sequence numbers.
type seqTrack struct {
	started bool
	last    uint16
}

// check counts a gap as lost packets and a step backwards as one
// reordered (or duplicated) packet. A late packet that fills a gap is
// counted both as lost (when the gap opened) and reordered.
func (s *seqTrack) check(seq uint16, st *readerStats) {
	if !s.started {
		s.started, s.last = true, seq
		return
	}
	d := int16(seq - s.last)
	switch {
	case d == 1:
		s.last = seq
	case d > 1:
		st.lost.Add(uint64(d - 1))
		s.last = seq
	default:
		st.reordered.Add(1)
	}
}

// Percentiles of a set of durations, in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1 // nearest rank
		i = max(0, min(i, len(s)-1))
		return ms(s[i])
	}
	return Percentiles{Count: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (p Percentiles) String() string {
	if p.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (n=%d)", p.P50, p.P90, p.P99, p.Max, p.Count)
}

// ServerFigures are the server's costs over the measurement window.
type ServerFigures struct {
	PID            int     `json:"pid"`
	CPUPercent     float64 `json:"cpu_percent"` // of one core
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUSecondsPerG float64 `json:"cpu_seconds_per_gb"`
	RSSStartKiB    int64   `json:"rss_start_kib"`
	RSSEndKiB      int64   `json:"rss_end_kib"`
	RSSPerReaderKB float64 `json:"rss_per_reader_kib"`
	// The same of anonymous memory only (RssAnon): the executable's pages
	// that the play path touches first are a fixed cost, not a reader's.
	AnonStartKiB    int64   `json:"rss_anon_start_kib,omitempty"`
	AnonEndKiB      int64   `json:"rss_anon_end_kib,omitempty"`
	AnonPerReaderKB float64 `json:"rss_anon_per_reader_kib,omitempty"`
}

// Summary is the result of `berth bench play`.
type Summary struct {
	URL           string  `json:"url"`
	Protocol      string  `json:"protocol"`
	Transport     string  `json:"transport,omitempty"`
	Readers       int     `json:"readers"`
	ReadersOK     int     `json:"readers_ok"`
	ReadersFailed int     `json:"readers_failed"`
	WindowSeconds float64 `json:"window_seconds"` // after the ramp, what rates are computed over
	Bytes         uint64  `json:"bytes"`          // whole run
	Packets       uint64  `json:"packets"`        // whole run (RTP packets, or FLV/RTMP tags)
	VideoFrames   uint64  `json:"video_frames"`   // whole run, all readers
	EgressMbps    float64 `json:"egress_mbps"`    // in the window, all readers
	PacketsPerSec float64 `json:"packets_per_second"`
	Lost          uint64  `json:"lost"`
	Reordered     uint64  `json:"reordered"`
	LossPercent   float64 `json:"loss_percent"`
	SeqChecked    bool    `json:"seq_checked"` // RTP sequence numbers checked (RTSP only)

	FirstPacket     Percentiles `json:"first_packet"`   // from PLAY (or the request) to the first packet
	FirstKeyframe   Percentiles `json:"first_keyframe"` // to the first keyframe start
	PlayResponse    Percentiles `json:"play_response"`  // from PLAY sent to its response (RTSP)
	FirstVideoIsKey int         `json:"first_video_is_key"`
	FirstVideoSeen  int         `json:"first_video_seen"`

	Server *ServerFigures `json:"server,omitempty"`

	FloorCPUSecondsPerGB float64 `json:"floor_cpu_seconds_per_gb,omitempty"`
	FloorRatio           float64 `json:"floor_ratio,omitempty"`
	FloorInterval        string  `json:"floor_interval,omitempty"`

	Errors []string `json:"errors,omitempty"` // distinct reader errors with counts
}

// Print writes the summary for a human.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "\n%s (%s", s.URL, s.Protocol)
	if s.Transport != "" {
		fmt.Fprintf(w, " over %s", s.Transport)
	}
	fmt.Fprintf(w, "), %d readers\n", s.Readers)
	fmt.Fprintf(w, "  readers          %d ok, %d failed\n", s.ReadersOK, s.ReadersFailed)
	fmt.Fprintf(w, "  egress           %.1f Mb/s, %.0f packets/s over %.1f s after the ramp\n", s.EgressMbps, s.PacketsPerSec, s.WindowSeconds)
	fmt.Fprintf(w, "  received         %d bytes, %d packets, %d video frames\n", s.Bytes, s.Packets, s.VideoFrames)
	if s.SeqChecked {
		fmt.Fprintf(w, "  loss             %d lost (%.4f%%), %d reordered\n", s.Lost, s.LossPercent, s.Reordered)
	} else {
		fmt.Fprintf(w, "  loss             not checked (no sequence numbers in %s)\n", s.Protocol)
	}
	fmt.Fprintf(w, "  first packet     %s\n", s.FirstPacket)
	fmt.Fprintf(w, "  first keyframe   %s\n", s.FirstKeyframe)
	if s.PlayResponse.Count > 0 {
		fmt.Fprintf(w, "  PLAY response    %s\n", s.PlayResponse)
	}
	if s.FirstVideoSeen > 0 {
		fmt.Fprintf(w, "  first video      a keyframe for %d of %d readers\n", s.FirstVideoIsKey, s.FirstVideoSeen)
	}
	if sv := s.Server; sv != nil {
		fmt.Fprintf(w, "  server pid %d    CPU %.1f%% of a core, %.2f CPU-s per GB, RSS %d -> %d KiB (%.1f KiB per reader; anonymous %.1f)\n",
			sv.PID, sv.CPUPercent, sv.CPUSecondsPerG, sv.RSSStartKiB, sv.RSSEndKiB, sv.RSSPerReaderKB, sv.AnonPerReaderKB)
	}
	if s.FloorCPUSecondsPerGB > 0 {
		fmt.Fprintf(w, "  floor (writev)   %.2f CPU-s per GB (one writev per socket every %s); server / floor = %.2fx\n", s.FloorCPUSecondsPerGB, s.FloorInterval, s.FloorRatio)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "  error            %s\n", e)
	}
}

// errorSet counts distinct errors.
type errorSet struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errorSet) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[err.Error()]++
}

func (e *errorSet) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for k, n := range e.m {
		out = append(out, fmt.Sprintf("%d× %s", n, k))
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("... and %d more kinds", len(out)-10))
	}
	return out
}

// durations collects one duration per reader.
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func (d *durations) add(v time.Duration) {
	d.mu.Lock()
	d.d = append(d.d, v)
	d.mu.Unlock()
}

func (d *durations) get() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.d)
}

// PlayForms names the URLs `bench play` reads, for error messages.
const PlayForms = "rtsp://host/app/stream, rtmp://host/app/stream, http(s):// or ws(s)://host/app/stream.live.flv, .live.mp4 (fMP4) or .live.ts (MPEG-TS), " +
	"http(s)://host/app/stream/hls.m3u8 (HLS) or hls.fmp4.m3u8 (LL-HLS)"

// protoOf names the protocol of a play URL by its scheme and, for HTTP and
// WebSocket, the file it names (ZLMediaKit's URL forms); "" for none.
func protoOf(rawURL string) string {
	switch {
	case strings.HasPrefix(rawURL, "rtsp://"):
		return "rtsp"
	case strings.HasPrefix(rawURL, "rtmp://"):
		return "rtmp"
	}
	var scheme string
	switch {
	case strings.HasPrefix(rawURL, "http://"), strings.HasPrefix(rawURL, "https://"):
		scheme = "http"
	case strings.HasPrefix(rawURL, "ws://"), strings.HasPrefix(rawURL, "wss://"):
		scheme = "ws"
	default:
		return ""
	}
	p := rawURL
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	switch {
	case strings.HasSuffix(p, ".flv"):
		return scheme + "-flv"
	case strings.HasSuffix(p, ".mp4"):
		return scheme + "-fmp4"
	case strings.HasSuffix(p, ".ts"):
		return scheme + "-ts"
	case scheme == "http" && strings.HasSuffix(p, "/hls.fmp4.m3u8"):
		return "ll-hls"
	case scheme == "http" && strings.HasSuffix(p, ".m3u8"):
		return "hls"
	}
	return ""
}
