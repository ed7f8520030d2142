#!/usr/bin/env bash
# Soak: Berth (built from this checkout) with one publisher per protocol
# (RTSP synthetic, RTMP, SRT, RTP-TS) and READERS readers of mixed protocols
# for DURATION; goroutines, fds, RSS and Go heap are sampled from Berth's
# /metrics every EVERY into OUT/soak.csv, and the verdict (growth per line
# after WARMUP) goes to OUT/soak.txt. Exit 1 when goroutines or fds grow.
#
#   scripts/soak.sh                       # 30 min, 400 readers
#   DURATION=2m READERS=40 EVERY=10s WARMUP=30s scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30m}
READERS=${READERS:-400}
EVERY=${EVERY:-1m}
WARMUP=${WARMUP:-2m}
FLAT=${FLAT:-10}
OUT=${OUT:-/tmp/berth-soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v ffmpeg >/dev/null || { echo "soak.sh: ffmpeg is needed for the RTMP, SRT and RTP publishers: apt-get install ffmpeg" >&2; exit 2; }

go build -o "$OUT/berth" ./cmd/berth
# Free ports picked by the kernel (TCP and UDP both free), so the soak runs
# beside another Berth or a test run.
read -r RTSP RTMP HTTP SRT RTP RANGE < <(python3 - <<'PY'
import socket
def free():
    while True:
        t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p)); return p
        except OSError:
            pass
        finally:
            t.close(); u.close()
print(*[free() for _ in range(5)], 40000 + free() % 20 * 1000)
PY
)
cat >"$OUT/berth.ini" <<INI
[general]
listen_ip=127.0.0.1
[rtsp]
port=$RTSP
rtp_port_range=$RANGE-$((RANGE + 999))
[rtmp]
port=$RTMP
[http]
port=$HTTP
[srt]
port=$SRT
[rtp_proxy]
port=$RTP
[rtc]
port=0
tcpPort=0
INI
ulimit -n 65536 2>/dev/null || true
"$OUT/berth" -c "$OUT/berth.ini" >"$OUT/berth.log" 2>&1 &
BERTH=$!
trap 'kill $BERTH 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "Berth is listening" "$OUT/berth.log" && break
  kill -0 $BERTH 2>/dev/null || { cat "$OUT/berth.log"; exit 1; }
  sleep 0.1
done
echo "soak: Berth pid $BERTH, $READERS readers for $DURATION, samples every $EVERY into $OUT/soak.csv"
set +e
"$OUT/berth" bench soak -host 127.0.0.1 -rtsp "$RTSP" -rtmp "$RTMP" -http "$HTTP" -srt "$SRT" -rtp "$RTP" \
  -n "$READERS" -duration "$DURATION" -every "$EVERY" -warmup "$WARMUP" -flat "$FLAT" -csv "$OUT/soak.csv" | tee "$OUT/soak.txt"
rc=${PIPESTATUS[0]}
set -e
kill -TERM $BERTH
wait $BERTH || true
trap - EXIT
echo "soak: exit $rc; CSV $OUT/soak.csv, verdict $OUT/soak.txt, Berth's log $OUT/berth.log"
exit $rc
