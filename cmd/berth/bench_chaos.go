package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/berthmedia/berth/internal/bench"
	"github.com/berthmedia/berth/internal/config"
)

// benchChaos is `berth bench chaos`: the bad-input campaign
// (docs/reliability.md). Its addresses default to the embedded defaults'
// ports on 127.0.0.1; an empty address leaves that listener out.
func benchChaos(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	d := config.Default()
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	fs := newBenchFlags("chaos", stderr)
	var cfg bench.ChaosConfig
	fs.StringVar(&cfg.RTSP, "rtsp", addr(d.RTSP.Port), "RTSP address (the legitimate stream is published and read here)")
	fs.StringVar(&cfg.RTMP, "rtmp", addr(d.RTMP.Port), "RTMP address")
	fs.StringVar(&cfg.HTTP, "http", addr(d.HTTP.Port), "HTTP address (HTTP-FLV/fMP4/TS, HLS, WebSocket, API, WHIP/WHEP, /metrics)")
	fs.StringVar(&cfg.RTP, "rtp", addr(d.RTPProxy.Port), "RTP proxy address (TCP; UDP too unless -rtp-udp)")
	fs.StringVar(&cfg.RTPUDP, "rtp-udp", "", "RTP proxy UDP address when it differs from -rtp")
	fs.StringVar(&cfg.SRT, "srt", addr(d.SRT.Port), "SRT address (UDP)")
	fs.StringVar(&cfg.RTC, "rtc", addr(d.RTC.Port), "WebRTC ICE address (UDP)")
	fs.StringVar(&cfg.RTCTCP, "rtc-tcp", addr(d.RTC.TCPPort), "WebRTC ICE-TCP address")
	fs.StringVar(&cfg.HTTPS, "https", "", "HTTPS address (open with a certificate: [http] sslport); \"\" = none")
	fs.StringVar(&cfg.RTSPS, "rtsps", "", "RTSPS address ([rtsp] sslport); \"\" = none")
	fs.StringVar(&cfg.RTMPS, "rtmps", "", "RTMPS address ([rtmp] sslport); \"\" = none")
	fs.StringVar(&cfg.Secret, "secret", d.API.Secret, "[api] secret, so API calls reach the endpoints' argument checks")
	fs.IntVar(&cfg.N, "n", 100000, "number of bad inputs")
	fs.IntVar(&cfg.Concurrency, "c", 16, "inputs in flight at once")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the inputs: the same seed sends the same inputs")
	fs.IntVar(&cfg.Only, "only", 0, "send only input number I (1-based), to reproduce one")
	fs.IntVar(&cfg.Readers, "readers", 20, "legitimate RTSP/TCP readers")
	fs.StringVar(&cfg.Path, "path", "live/chaos", "the legitimate stream's app/stream")
	rate := fs.String("rate", "1M", "bit rate of the legitimate synthetic stream")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id: checks it is alive, counts its fds and RSS in /proc")
	fs.DurationVar(&cfg.Settle, "settle", 30*time.Second, "how long goroutines, fds and RSS may take to return to baseline")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "per input")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 0 {
		fmt.Fprintf(stderr, "berth bench chaos: unexpected argument %q (addresses are flags: -rtsp, -http, ...)\n", pos[0])
		return exitConfig
	}
	if cfg.Rate, err = parseRate(*rate); err != nil {
		fmt.Fprintln(stderr, "berth bench chaos:", err)
		return exitConfig
	}
	cfg.Progress = stdout
	if *asJSON {
		cfg.Progress = stderr
	}
	rep, err := bench.Chaos(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "berth bench chaos:", err)
		return exitConfig
	}
	if *asJSON {
		printJSON(stdout, rep)
	} else {
		rep.Print(stdout)
	}
	if !rep.OK() {
		return exitFail
	}
	return exitOK
}
