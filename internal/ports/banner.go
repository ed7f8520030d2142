package ports

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// Banner writes the startup banner: per protocol the URLs that work (those
// the self-probe proved, when it ran) and a copy-paste push and play
// command. Listeners moved by port_fallback are repeated first.
func Banner(w io.Writer, b *Bound, log *slog.Logger) {
	var sb strings.Builder
	for _, n := range b.Notices {
		fmt.Fprintf(&sb, "NOTE %s\n", n)
	}
	fmt.Fprintf(&sb, "Berth is listening (pid %d):\n", osGetpid())
	for _, s := range b.Specs {
		urls, failed := b.workingURLs(s)
		if len(urls) == 0 {
			fmt.Fprintf(&sb, "  %-14s %s: no address answered the self-probe (see the errors above)\n", s.Name, s.Addr())
			continue
		}
		first := urls[0]
		fmt.Fprintf(&sb, "  %-14s %s\n", s.Name+"/"+s.Network, strings.Join(urls, "  "))
		if len(failed) > 0 {
			fmt.Fprintf(&sb, "  %-14s not reachable: %s (see the errors above)\n", "", strings.Join(failed, "  "))
		}
		if lan := lanHosts(s); len(lan) > 0 {
			var us []string
			for _, h := range lan {
				us = append(us, scheme(s)+"://"+net.JoinHostPort(h, strconv.Itoa(s.Port))+"/")
			}
			fmt.Fprintf(&sb, "  %-14s from other hosts: %s\n", "", strings.Join(us, "  "))
		}
		push, play := commands(s, first)
		if push != "" {
			fmt.Fprintf(&sb, "  %-14s push: %s\n", "", push)
		}
		if play != "" {
			fmt.Fprintf(&sb, "  %-14s play: %s\n", "", play)
		}
		if scheme(s) == "http" || scheme(s) == "https" {
			// What else the HTTP port serves, so a newcomer finds it from the banner.
			fmt.Fprintf(&sb, "  %-14s page: %s (status; HLS at live/stream/hls.m3u8 and LL-HLS at live/stream/hls.fmp4.m3u8, fMP4 at live/stream.live.mp4, TS at live/stream.live.ts, API under index/api/, Prometheus at metrics)\n", "", first)
		}
	}
	io.WriteString(w, sb.String())
	if log != nil {
		log.Debug("banner written", "listeners", len(b.Specs))
	}
}

// workingURLs splits a spec's loopback URLs into those the self-probe
// proved (all of them when it did not run or cannot identify the protocol)
// and those that failed.
func (b *Bound) workingURLs(s Spec) (ok, failed []string) {
	res, probed := b.probeResults(s.Name)
	if !probed || !identifiable(s) {
		return URLs(s), nil
	}
	for _, r := range res {
		if !r.served {
			continue
		}
		u := scheme(s) + "://" + net.JoinHostPort(r.host, strconv.Itoa(s.Port)) + "/"
		if r.ok {
			ok = append(ok, u)
		} else {
			failed = append(failed, u)
		}
	}
	return ok, failed
}

// commands are the ffmpeg push and ffplay play lines for a base URL.
func commands(s Spec, base string) (push, play string) {
	switch scheme(s) {
	case "rtsp", "rtsps":
		u := base + "live/stream"
		return "ffmpeg -re -i input.mp4 -c copy -f rtsp -rtsp_transport tcp " + u, "ffplay -rtsp_transport tcp " + u
	case "rtmp", "rtmps":
		u := base + "live/stream"
		return "ffmpeg -re -i input.mp4 -c copy -f flv " + u, "ffplay " + u
	case "http", "https":
		return "", "ffplay " + base + "live/stream.live.flv"
	case "rtp":
		return "ffmpeg -re -i input.mp4 -c copy -f rtp_mpegts " + strings.TrimSuffix(base, "/"), ""
	case "srt":
		u := strings.TrimSuffix(base, "/") + "?streamid=#!::r=live/stream,m="
		return "ffmpeg -re -i input.mp4 -c copy -f mpegts '" + u + "publish'", "ffplay '" + u + "request'"
	}
	return "", ""
}

// lanHosts are this host's non-loopback addresses a wildcard spec serves.
func lanHosts(s Spec) []string {
	if !s.Wildcard() {
		return nil
	}
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range as {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
			continue
		}
		if s.Host == "0.0.0.0" && n.IP.To4() == nil {
			continue
		}
		out = append(out, n.IP.String())
		if len(out) == 3 {
			break
		}
	}
	return out
}
