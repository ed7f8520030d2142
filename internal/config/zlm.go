package config

import (
	"sort"
	"strings"
	"sync"
)

// Berth reads ZLMediaKit's config.ini as it is, so a user can point Berth at
// the file their ZLMediaKit ran with. Most of its keys configure features
// Berth does not have (yet): HLS, MP4 recording, WebRTC, SRT, FFmpeg, the
// shell. Those keys are not mistakes, so they must not be warned about one by
// one (a shipped config.ini would print a screenful); a key neither Berth nor
// ZLMediaKit knows is a typo or a stale key, and that deserves a warning with
// its line. This catalogue is how the parser tells the two apart.

// zlmConfigINI lists every section and key of ZLMediaKit's shipped
// conf/config.ini (master, 2024-2025) with its shipped default: it is the
// file a ZLMediaKit user has. Written from the file's key list, not copied
// from it (its comments are Chinese and long; the key names are the
// interface).
const zlmConfigINI = `[api]
apiDebug=1
secret=035c73f7-bb6b-4889-a715-d9eb2d1925cc
snapRoot=./www/snap/
defaultSnap=./www/logo.png
downloadRoot=./www
legacy_authorization=0

[ffmpeg]
bin=/usr/bin/ffmpeg
cmd=%s -re -i %s -c:a aac -strict -2 -ar 44100 -ab 48k -c:v libx264 -f flv %s
snap=%s -i %s -y -f mjpeg -frames:v 1 %s
log=./ffmpeg/ffmpeg.log
restart_sec=0

[protocol]
modify_stamp=2
enable_audio=1
add_mute_audio=1
auto_close=0
continue_push_ms=15000
paced_sender_ms=0
enable_hls=1
enable_hls_fmp4=0
enable_mp4=0
enable_rtsp=1
enable_rtmp=1
enable_ts=1
enable_fmp4=1
mp4_as_player=0
mp4_max_second=3600
mp4_save_path=./www
hls_save_path=./www
hls_demand=0
rtsp_demand=0
rtmp_demand=0
ts_demand=0
fmp4_demand=0

[general]
enableVhost=0
flowThreshold=1024
maxStreamWaitMS=15000
streamNoneReaderDelayMS=20000
resetWhenRePlay=1
mergeWriteMS=0
mediaServerId=your_server_id
wait_track_ready_ms=10000
wait_audio_track_data_ms=1000
wait_add_track_ms=3000
unready_frame_cache=100
broadcast_player_count_changed=0
listen_ip=::
check_nvidia_dev=1
enable_ffmpeg_log=0

[hls]
fileBufSize=65536
segDur=2
segNum=3
segDelay=0
segRetain=5
broadcastRecordTs=0
deleteDelaySec=10
segKeep=0
fastRegister=0
tsNumInOneM3u8=720

[hook]
enable=0
on_flow_report=https://127.0.0.1/index/hook/on_flow_report
on_http_access=https://127.0.0.1/index/hook/on_http_access
on_play=https://127.0.0.1/index/hook/on_play
on_publish=https://127.0.0.1/index/hook/on_publish
on_record_mp4=https://127.0.0.1/index/hook/on_record_mp4
on_record_ts=https://127.0.0.1/index/hook/on_record_ts
on_rtsp_auth=https://127.0.0.1/index/hook/on_rtsp_auth
on_rtsp_realm=https://127.0.0.1/index/hook/on_rtsp_realm
on_shell_login=https://127.0.0.1/index/hook/on_shell_login
on_stream_changed=https://127.0.0.1/index/hook/on_stream_changed
stream_changed_schemas=rtsp/rtmp/fmp4/ts/hls/hls.fmp4
on_stream_none_reader=https://127.0.0.1/index/hook/on_stream_none_reader
on_stream_not_found=https://127.0.0.1/index/hook/on_stream_not_found
on_server_started=https://127.0.0.1/index/hook/on_server_started
on_server_exited=https://127.0.0.1/index/hook/on_server_exited
on_server_keepalive=https://127.0.0.1/index/hook/on_server_keepalive
on_send_rtp_stopped=https://127.0.0.1/index/hook/on_send_rtp_stopped
on_rtp_server_timeout=https://127.0.0.1/index/hook/on_rtp_server_timeout
timeoutSec=10
alive_interval=10.0
retry=1
retry_delay=3.0

[cluster]
origin_url=
timeout_sec=15
retry_count=3

[http]
charSet=utf-8
keepAliveSecond=30
maxReqSize=40960
port=80
rootPath=./www
sendBufSize=65536
sslport=443
dirMenu=1
virtualPath=
forbidCacheSuffix=
forwarded_ip_header=
allow_cross_domains=1
allow_ip_range=::1,127.0.0.1,172.16.0.0-172.31.255.255,192.168.0.0-192.168.255.255,10.0.0.0-10.255.255.255

[multicast]
addrMax=239.255.255.255
addrMin=239.0.0.0
udpTTL=64

[record]
appName=record
fileBufSize=65536
sampleMS=500
fastStart=0
fileRepeat=0
enableFmp4=0
recordOnce=0

[rtmp]
handshakeSecond=15
keepAliveSecond=15
port=1935
sslport=0
directProxy=1
enhanced=0

[rtp]
audioMtuSize=600
videoMtuSize=1400
rtpMaxSize=10
lowLatency=0
h264_stap_a=1

[rtp_proxy]
dumpDir=
port=10000
timeoutSec=15
port_range=30000-35000
h264_pt=98
h265_pt=99
ps_pt=96
opus_pt=100
gop_cache=1
rtp_g711_dur_ms=100
udp_recv_socket_buffer=4194304
merge_frame=1

[rtc]
timeoutSec=15
externIP=
interfaces=
port=8000
tcpPort=8000
signalingPort=3000
signalingSslPort=3001
icePort=3478
iceTcpPort=3478
enableTurn=1
port_range=49152-65535
rembBitRate=0
preferredCodecA=PCMA,PCMU,opus,mpeg4-generic
preferredCodecV=H264,H265,AV1,VP9,VP8
start_bitrate=0
max_bitrate=0
min_bitrate=0
maxRtpCacheMS=5000
maxRtpCacheSize=2048
nackMaxSize=2048
nackMaxMS=3000
nackMaxCount=15
nackIntervalRatio=1.0
nackRtpSize=8
datachannel_echo=0
bfilter=0

[srt]
timeoutSec=5
port=9000
latencyMul=4
pktBufSize=8192
passPhrase=

[rtsp]
authBasic=0
directProxy=1
handshakeSecond=15
keepAliveSecond=15
port=554
sslport=0
lowLatency=0
rtpTransportType=-1

[shell]
maxReqSize=1024
port=0
`

// zlmLegacyKeys are keys older ZLMediaKit releases shipped (and still
// accept): a config.ini written by ZLMediaKit 4.x/5.x has them, and they
// are no more a typo than the current ones.
const zlmLegacyKeys = `[api]
[general]
addMuteAudio
publishToRtxp
publishToHls
publishToMP4
modifyStamp
enable_audio
continue_push_ms
fmp4_demand
hls_demand
rtsp_demand
rtmp_demand
ts_demand
mp4_as_player
[hls]
filePath
[hook]
admin_params
on_record_hls
on_proxy_pusher_failed
[http]
notFound
[record]
filePath
fileSecond
[rtmp]
modifyStamp
[rtp]
maxRtpCount
clearCount
cycleMS
[rtp_proxy]
checkSource
`

var zlmCatalogue struct {
	once     sync.Once
	keys     map[string]map[string]string // lower-case section -> lower-case key -> ZLMediaKit's spelling
	sections map[string]string            // lower-case section -> spelling
	count    int                          // keys of the shipped file
}

func loadZLMCatalogue() {
	c := &zlmCatalogue
	c.keys = map[string]map[string]string{}
	c.sections = map[string]string{}
	add := func(text string, shipped bool) {
		section := ""
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "":
			case line[0] == '[':
				section = strings.Trim(line, "[]")
				ls := strings.ToLower(section)
				c.sections[ls] = section
				if c.keys[ls] == nil {
					c.keys[ls] = map[string]string{}
				}
			default:
				name, _, _ := strings.Cut(line, "=")
				ls, ln := strings.ToLower(section), strings.ToLower(name)
				if _, dup := c.keys[ls][ln]; !dup && shipped {
					c.count++
				}
				c.keys[ls][ln] = name
			}
		}
	}
	add(zlmConfigINI, true)
	add(zlmLegacyKeys, false)
}

// ZLMediaKitDefaultINI returns the text of ZLMediaKit's shipped config.ini
// (keys and defaults, without its comments): what a ZLMediaKit user's file
// holds. Tests load it; docs/config.md describes what Berth does with it.
func ZLMediaKitDefaultINI() []byte { return []byte(zlmConfigINI) }

// ZLMediaKitKeyCount is the number of keys in ZLMediaKit's shipped config.ini.
func ZLMediaKitKeyCount() int {
	zlmCatalogue.once.Do(loadZLMCatalogue)
	return zlmCatalogue.count
}

// IsZLMediaKitKey reports whether ZLMediaKit has the key (current or legacy),
// matching case-insensitively as Berth's own keys do.
func IsZLMediaKitKey(section, name string) bool {
	zlmCatalogue.once.Do(loadZLMCatalogue)
	_, ok := zlmCatalogue.keys[strings.ToLower(section)][strings.ToLower(name)]
	return ok
}

// IsZLMediaKitSection reports whether ZLMediaKit has the section.
func IsZLMediaKitSection(section string) bool {
	zlmCatalogue.once.Do(loadZLMCatalogue)
	_, ok := zlmCatalogue.sections[strings.ToLower(section)]
	return ok
}

// suggest returns the known key (Berth's or ZLMediaKit's) of section nearest
// to name when it is a likely typo (edit distance 2 or less), else "".
func suggest(section, name string) string {
	zlmCatalogue.once.Do(loadZLMCatalogue)
	best, bestD := "", 3
	try := func(cand string) {
		if d := editDistance(strings.ToLower(name), strings.ToLower(cand)); d < bestD {
			best, bestD = cand, d
		}
	}
	for i := range keys {
		if strings.EqualFold(keys[i].section, section) {
			try(keys[i].name)
		}
	}
	var zlm []string
	for _, cand := range zlmCatalogue.keys[strings.ToLower(section)] {
		zlm = append(zlm, cand)
	}
	sort.Strings(zlm) // map order would make ties pick a different key each run
	for _, cand := range zlm {
		try(cand)
	}
	return best
}

// editDistance is Levenshtein's distance; names are short, so O(n*m) is fine.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
