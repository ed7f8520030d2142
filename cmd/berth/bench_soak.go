package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/berthmedia/berth/internal/bench"
)

// benchSoak is `berth bench soak`: a publisher per ingest protocol and
// readers of mixed protocols against a running Berth for a long time,
// sampling its goroutines, fds, RSS and heap into a CSV; exit 1 when the
// goroutines or fds grow after warm-up by more than -flat percent.
func benchSoak(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newBenchFlags("soak", stderr)
	host := fs.String("host", "127.0.0.1", "Berth's address")
	rtsp := fs.Int("rtsp", 8554, "Berth's RTSP port (publisher and RTSP readers; streams are checked live over it)")
	rtmp := fs.Int("rtmp", 1935, "Berth's RTMP port; 0 = no RTMP publisher or readers")
	httpPort := fs.Int("http", 8080, "Berth's HTTP port (/metrics, HTTP-FLV, WS-FLV, HTTP-TS, HTTP-fMP4, HLS readers)")
	srt := fs.Int("srt", 9000, "Berth's SRT port; 0 = no SRT publisher")
	rtp := fs.Int("rtp", 10000, "Berth's [rtp_proxy] port; 0 = no RTP (MPEG-TS) publisher")
	n := fs.Int("n", 400, "readers, spread over the kinds of reader and the streams")
	duration := fs.Duration("duration", 30*time.Minute, "how long to run")
	every := fs.Duration("every", time.Minute, "sampling period")
	warmup := fs.Duration("warmup", 2*time.Minute, "samples before this are not judged")
	file := fs.String("file", "", "media file ffmpeg pushes over RTMP, SRT and RTP (default: 10 s of test pattern made with ffmpeg)")
	rate := fs.String("rate", "500k", "bit rate of the RTSP synthetic publisher")
	csvPath := fs.String("csv", "soak.csv", "where the samples go; - = stdout")
	flat := fs.Float64("flat", 10, "growth after warm-up, in percent, above which goroutines or fds count as growing")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 0 {
		fmt.Fprintf(stderr, "berth bench soak: unexpected argument %q (ports are flags: -rtsp, -http, ...; readers -n)\n", pos[0])
		return exitConfig
	}
	r, err := parseRate(*rate)
	if err != nil {
		fmt.Fprintln(stderr, "berth bench soak:", err)
		return exitConfig
	}
	csv := stdout
	if *csvPath != "-" {
		f, err := os.Create(*csvPath)
		if err != nil {
			fmt.Fprintf(stderr, "berth bench soak: the CSV: %v (give -csv a writable path)\n", err)
			return exitConfig
		}
		defer f.Close()
		csv = f
	}
	res, err := bench.Soak(ctx, bench.SoakConfig{Host: *host, RTSPPort: *rtsp, RTMPPort: *rtmp, HTTPPort: *httpPort, SRTPort: *srt, RTPPort: *rtp,
		Readers: *n, Duration: *duration, Every: *every, Warmup: *warmup, File: *file, Rate: r, CSV: csv, Progress: stdout})
	if err != nil {
		fmt.Fprintln(stderr, "berth bench soak:", err)
		return exitConfig
	}
	fmt.Fprintln(stdout)
	res.Print(stdout, *flat)
	if res.Line("goroutines").GrowthPercent > *flat || res.Line("fds").GrowthPercent > *flat {
		return exitFail
	}
	return exitOK
}
