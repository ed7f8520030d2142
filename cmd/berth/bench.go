package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthmedia/berth/internal/bench"
	"github.com/berthmedia/berth/internal/rtspclient"
)

const benchUsage = `Usage: berth bench play URL [-n N] [-duration 30s] [-ramp 50/100ms] [-pid PID] [-transport tcp|udp] [-floor] [-json]
       berth bench push URL [-n M] [-file F] [-rate 4M] [-duration D] [-transport tcp|udp] [-json]
       berth bench latency PUSH_URL READ_URL [-duration 10s] [-rate 4M] [-stalls=false] [-json]
       berth bench floor [-n 400] [-rate 4M] [-duration 20s] [-json]
       berth bench soak [-n 400] [-duration 30m] [-every 1m] [-csv soak.csv] [-rtsp P -rtmp P -http P -srt P -rtp P]
       berth bench chaos [-n 100000] [-c 16] [-seed S] [-pid PID] [-rtsp ADDR ...] [-json]

play     N readers of URL: a line per second, then a summary (readers ok/failed, Mb/s,
         packets/s, RTP loss, first packet and keyframe p50/p99; with -pid the server's
         CPU %, CPU-seconds per GB and RSS per reader). URL is one of
           rtsp://host/app/stream                  rtmp://host/app/stream
           http://host/app/stream.live.flv         HTTP-FLV (ws:// for WS-FLV)
           http://host/app/stream.live.mp4         HTTP-fMP4 (ws:// for WS-fMP4)
           http://host/app/stream.live.ts          HTTP-TS (ws:// for WS-TS)
           http://host/app/stream/hls.m3u8         HLS: each reader a viewer that reloads
                                                   every target duration / 2, fetches each
                                                   new segment once
           http://host/app/stream/hls.fmp4.m3u8    LL-HLS: each viewer follows the variant
                                                   and its audio, asks for the next part
                                                   with a blocking reload (_HLS_msn/_HLS_part)
push     M publishers at real-time speed, looping: -file F is pushed with ffmpeg
         (RTSP or RTMP), else a synthetic H.264 stream (RTSP or RTMP). M > 1 publishes URL_0..URL_{M-1}.
latency  publishes a synthetic stream whose packets carry their send time to PUSH_URL,
         reads it back from READ_URL (rtsp://, rtmp://, .flv, or a WHEP URL: WebRTC)
         and prints the delay distribution; meanwhile a sleeping thread per CPU notes when
         the machine itself stalls (a VM's host does, for milliseconds), and the slow
         samples that spanned such a stall are counted.
floor    the same bytes written with plain writev to N loopback sockets, no protocol:
         the least CPU per GB any server can spend.
soak     a publisher per protocol (RTSP synthetic, RTMP, SRT and RTP-TS with ffmpeg) and N
         readers of mixed protocols (RTSP TCP/UDP, RTMP, HTTP-FLV, WS-FLV, HTTP-TS, HTTP-fMP4,
         HLS) against a running Berth; samples its /metrics (goroutines, fds, RSS, heap) every
         -every into a CSV and says whether each line is flat after -warmup.
chaos    N malformed or mutated inputs spread over every listener of a running Berth
         (RTSP, RTMP, HTTP/WebSocket, API, RTP proxy, SRT, WebRTC) while a synthetic
         publisher and 20 RTSP/TCP readers run; reports crashes, the readers' loss, and
         the server's goroutines, fds and RSS before, at peak and after a settle time.
         Input i depends only on -seed and i: -only i replays one. Exit 1 on a failure.
         (chaos alone also asks Berth's /berth/health, /metrics and openRtpServer.)

It speaks the protocols, not Berth's API: it measures any server.
`

// runBench is `berth bench`.
func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, benchUsage)
		if len(args) == 0 {
			return exitConfig
		}
		return exitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "play":
		return benchPlay(ctx, args[1:], stdout, stderr)
	case "push":
		return benchPush(ctx, args[1:], stdout, stderr)
	case "latency":
		return benchLatency(ctx, args[1:], stdout, stderr)
	case "floor":
		return benchFloor(ctx, args[1:], stdout, stderr)
	case "soak":
		return benchSoak(ctx, args[1:], stdout, stderr)
	case "chaos":
		return benchChaos(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "berth bench: unknown mode %q; want play, push, latency, floor, soak or chaos\n\n%s", args[0], benchUsage)
	return exitConfig
}

// parseInterspersed parses flags that may come after the positional
// arguments (`berth bench play URL -n 100`), returning the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newBenchFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("berth bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage+"\nFlags of "+name+":\n")
		fs.PrintDefaults()
	}
	return fs
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitConfig
}

// parseRate reads a bit rate: "4M", "500k", "4000000".
func parseRate(s string) (float64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "M") || strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	case strings.HasSuffix(s, "k") || strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "G") || strings.HasSuffix(s, "g"):
		mult, s = 1e9, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("rate %q: want bits per second like 4M, 500k or 4000000", s)
	}
	return v * mult, nil
}

// parseRamp reads "50/100ms": 50 readers every 100 ms.
func parseRamp(s string) (int, time.Duration, error) {
	if s == "" {
		return 0, 0, nil
	}
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("-ramp %q: want COUNT/INTERVAL like 50/100ms", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count <= 0 {
		return 0, 0, fmt.Errorf("-ramp %q: COUNT must be a positive number", s)
	}
	every, err := time.ParseDuration(d)
	if err != nil || every < 0 {
		return 0, 0, fmt.Errorf("-ramp %q: INTERVAL must be a duration like 100ms", s)
	}
	return count, every, nil
}

func parseTransport(s string) (rtspclient.Transport, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return rtspclient.TCP, nil
	case "udp":
		return rtspclient.UDP, nil
	}
	return 0, fmt.Errorf("-transport %q: want tcp or udp", s)
}

// isTerminal reports whether w is a terminal, where the progress line is
// rewritten in place. A character device is not enough: /dev/null is one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return termios(f.Fd())
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func benchPlay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newBenchFlags("play", stderr)
	n := fs.Int("n", 1, "number of readers")
	duration := fs.Duration("duration", 30*time.Second, "how long to read")
	ramp := fs.String("ramp", "", "start COUNT readers every INTERVAL, e.g. 50/100ms (default: all at once)")
	pid := fs.Int("pid", 0, "server process id: report its CPU and memory from /proc")
	transport := fs.String("transport", "tcp", "RTSP transport: tcp (interleaved) or udp")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	floor := fs.Bool("floor", false, "after reading, run the writev floor at the same rate and print the ratio")
	floorInterval := fs.Duration("floor-interval", 40*time.Millisecond, "the floor's time between flushes (40ms = one writev per frame at 25 fps)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "berth bench play: want one URL, got %d arguments\n", len(pos))
		return exitConfig
	}
	rampN, rampEvery, err := parseRamp(*ramp)
	if err != nil {
		fmt.Fprintln(stderr, "berth bench play:", err)
		return exitConfig
	}
	tr, err := parseTransport(*transport)
	if err != nil {
		fmt.Fprintln(stderr, "berth bench play:", err)
		return exitConfig
	}
	progress := stdout
	if *asJSON {
		progress = stderr
	}
	s, err := bench.Play(ctx, bench.PlayConfig{
		URL: pos[0], N: *n, Duration: *duration, RampN: rampN, RampEvery: rampEvery, PID: *pid,
		Transport: tr, Timeout: *timeout, Progress: progress, Terminal: isTerminal(progress), Floor: *floor, FloorInterval: *floorInterval,
	})
	if err != nil {
		fmt.Fprintln(stderr, "berth bench play:", err)
		return exitConfig
	}
	if *asJSON {
		printJSON(stdout, s)
	} else {
		s.Print(stdout)
	}
	if s.ReadersFailed > 0 {
		return exitFail
	}
	return exitOK
}

func benchPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newBenchFlags("push", stderr)
	n := fs.Int("n", 1, "number of publishers")
	file := fs.String("file", "", "media file to push with ffmpeg -re -stream_loop -1 -c copy (default: a synthetic H.264 stream over RTSP)")
	rate := fs.String("rate", "4M", "bit rate of the synthetic stream")
	duration := fs.Duration("duration", 0, "how long to push (default: until interrupted)")
	transport := fs.String("transport", "tcp", "RTSP transport: tcp or udp")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "berth bench push: want one URL, got %d arguments\n", len(pos))
		return exitConfig
	}
	r, err := parseRate(*rate)
	if err != nil {
		fmt.Fprintln(stderr, "berth bench push:", err)
		return exitConfig
	}
	tr, err := parseTransport(*transport)
	if err != nil {
		fmt.Fprintln(stderr, "berth bench push:", err)
		return exitConfig
	}
	progress := stdout
	if *asJSON {
		progress = stderr
	}
	s, err := bench.Push(ctx, bench.PushConfig{URL: pos[0], N: *n, File: *file, Rate: r, Duration: *duration, Transport: tr, Progress: progress})
	if err != nil {
		fmt.Fprintln(stderr, "berth bench push:", err)
		return exitConfig
	}
	if *asJSON {
		printJSON(stdout, s)
	} else {
		fmt.Fprintf(stdout, "\n%d publishers, %d failed", s.Publishers, s.Failed)
		if *file == "" {
			fmt.Fprintf(stdout, ", sent %d bytes in %d packets (%.1f Mb/s)", s.Bytes, s.Packets, s.Mbps)
		}
		fmt.Fprintln(stdout)
		for _, e := range s.Errors {
			fmt.Fprintln(stdout, "  error", e)
		}
	}
	if s.Failed > 0 {
		return exitFail
	}
	return exitOK
}

func benchLatency(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newBenchFlags("latency", stderr)
	duration := fs.Duration("duration", 10*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", time.Second, "time after the first packet not counted")
	rate := fs.String("rate", "4M", "bit rate of the synthetic stream")
	transport := fs.String("transport", "tcp", "RTSP transport for both ends: tcp or udp")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	stalls := fs.Bool("stalls", true, "watch the machine's own stalls during the run, and count the slow samples they explain")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "berth bench latency: want PUSH_URL and READ_URL, got %d arguments\n", len(pos))
		return exitConfig
	}
	r, err := parseRate(*rate)
	if err != nil {
		fmt.Fprintln(stderr, "berth bench latency:", err)
		return exitConfig
	}
	tr, err := parseTransport(*transport)
	if err != nil {
		fmt.Fprintln(stderr, "berth bench latency:", err)
		return exitConfig
	}
	res, err := bench.Latency(ctx, bench.LatencyConfig{PushURL: pos[0], ReadURL: pos[1], Duration: *duration,
		Warmup: *warmup, Rate: r, Transport: tr, Timeout: *timeout, Stalls: *stalls})
	if err != nil {
		fmt.Fprintln(stderr, "berth bench latency:", err)
		return exitFail
	}
	if *asJSON {
		printJSON(stdout, res)
	} else {
		fmt.Fprintln(stdout, res)
	}
	return exitOK
}

func benchFloor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newBenchFlags("floor", stderr)
	n := fs.Int("n", 400, "number of sockets")
	rate := fs.String("rate", "4M", "bit rate per socket")
	duration := fs.Duration("duration", 20*time.Second, "how long to write")
	packet := fs.Int("packet", 1400, "bytes per packet")
	interval := fs.Duration("interval", 40*time.Millisecond, "time between flushes, one writev per socket each (40ms = a frame at 25 fps)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 0 {
		fmt.Fprintf(stderr, "berth bench floor: unexpected argument %q\n", pos[0])
		return exitConfig
	}
	r, err := parseRate(*rate)
	if err != nil {
		fmt.Fprintln(stderr, "berth bench floor:", err)
		return exitConfig
	}
	res, err := bench.Floor(ctx, bench.FloorConfig{N: *n, BytesPerSec: r / 8, Duration: *duration, PacketSize: *packet, Interval: *interval})
	if err != nil {
		fmt.Fprintln(stderr, "berth bench floor:", err)
		return exitFail
	}
	if *asJSON {
		printJSON(stdout, res)
	} else {
		fmt.Fprintln(stdout, res)
	}
	return exitOK
}
