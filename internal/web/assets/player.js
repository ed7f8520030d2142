// A small live player for Berth's HTTP-fMP4 streams (/app/stream.live.mp4):
// fetch reads the endless response, its bytes go to a Media Source
// Extensions SourceBuffer as they arrive, and a timer keeps playback near
// the live edge. No library: the stream is one init segment (ftyp, moov)
// then moof/mdat fragments, which MSE takes as they come.
"use strict";

const LIVE_LAG = 0.6;      // seconds behind the newest buffered frame we aim for
const SEEK_LAG = 3;        // further behind than this, jump instead of speeding up
const KEEP_BEHIND = 10;    // seconds of played media kept in the buffer
const RETRY_MS = 5000;     // a stream that ended or failed is tried again after this
const FALLBACK_CODECS = "avc1.42E01E,mp4a.40.2";

class LivePlayer {
  // onState(text, problem) tells the page what the player is doing.
  constructor(video, onState) {
    this.video = video;
    this.onState = onState;
    this.url = null;
    this.abort = null;
    this.timer = null;
    this.userPaused = false;
    this.endedUrl = null;
    this.endedAt = 0;
    this.pc = null;           // the WebRTC preview's peer connection (runWHEP)
    this.whepResource = null; // its session URL, DELETEd when it stops
    video.addEventListener("pause", () => { if (!this.seeking) this.userPaused = true; });
    video.addEventListener("play", () => { this.userPaused = false; });
    video.addEventListener("error", () => {
      const e = video.error;
      if (this.url && e) this.ended(this.url, "the browser could not play the stream: " + (e.message || "media error " + e.code), true);
    });
  }

  // play starts url, unless it is already playing or ended less than
  // RETRY_MS ago (the page calls play on every refresh; that is the retry).
  play(url) {
    if (url === this.url || (url === this.endedUrl && Date.now() - this.endedAt < RETRY_MS)) return;
    this.stop();
    this.url = url;
    this.run(url).then(() => {
      if (this.url === url) this.ended(url, "the stream ended; reconnecting", false);
    }, (e) => {
      if (this.url === url && e.name !== "AbortError") this.ended(url, String(e.message || e), true);
    });
  }

  ended(url, why, problem) {
    this.endedUrl = url;
    this.endedAt = Date.now();
    this.url = null;
    this.closeWHEP();
    if (this.abort) this.abort.abort();
    if (this.feed) this.feed.closed = true;
    clearInterval(this.timer);
    this.onState(why, problem);
  }

  stop() {
    this.url = null;
    this.closeWHEP();
    if (this.abort) this.abort.abort();
    this.abort = null;
    if (this.feed) this.feed.closed = true;
    this.feed = null;
    clearInterval(this.timer);
    this.timer = null;
    if (this.video.srcObject) this.video.srcObject = null;
    this.video.removeAttribute("src");
    this.video.load();
  }

  // closeWHEP ends a WebRTC preview: the peer connection, and the session
  // on the server (DELETE on its resource URL).
  closeWHEP() {
    if (!this.pc) return;
    this.pc.close();
    this.pc = null;
    if (this.whepResource) fetch(this.whepResource, { method: "DELETE" }).catch(() => {});
    this.whepResource = null;
    this.video.srcObject = null;
  }

  // runWHEP plays a "whep:URL" over WebRTC (docs/webrtc.md): a complete
  // offer POSTed to the WHEP URL, the answer applied, the tracks shown.
  // It returns when the connection fails or closes.
  async runWHEP(url) {
    const pc = new RTCPeerConnection();
    this.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.ontrack = (e) => { if (this.pc === pc && this.video.srcObject !== e.streams[0]) this.video.srcObject = e.streams[0]; };
    this.onState("connecting to " + url + " (WebRTC)", false);
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((ok) => {
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") ok(); });
      if (pc.iceGatheringState === "complete") ok();
      setTimeout(ok, 2000); // Berth is ICE lite: the candidates gathered by then are enough
    });
    const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
    if (res.status !== 201) throw new Error("WebRTC play refused: " + res.status + " " + (await res.text()));
    if (this.pc !== pc) return;
    this.whepResource = new URL(res.headers.get("Location"), location.href).href;
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    this.onState("playing " + url + " (WebRTC)", false);
    this.video.play().catch(() => {}); // refused autoplay: the controls still work
    await new Promise((ok) => pc.addEventListener("connectionstatechange", () => {
      if (["failed", "closed", "disconnected"].includes(pc.connectionState)) ok();
    }));
  }

  async run(url) {
    if (url.startsWith("whep:")) return this.runWHEP(url.slice(5));
    const MS = window.ManagedMediaSource || window.MediaSource;
    if (!MS) throw new Error("this browser has no Media Source Extensions: play the stream with ffplay or VLC");
    const abort = new AbortController();
    this.abort = abort;
    this.onState("connecting to " + url, false);
    const res = await fetch(url, { signal: abort.signal, cache: "no-store" });
    if (!res.ok) {
      throw new Error(res.status === 404
        ? "no HTTP-fMP4 stream at " + url + " (404): this Berth may not serve .live.mp4"
        : "HTTP-fMP4 request failed: " + res.status + " " + res.statusText);
    }
    const reader = res.body.getReader();
    // Read up to the end of the init segment: its moov names the codecs
    // when the response headers do not.
    let head = new Uint8Array(0);
    let initEnd = 0;
    while (!(initEnd = initSegmentEnd(head))) {
      const { done, value } = await reader.read();
      if (done) throw new Error("the stream ended before its init segment");
      head = concat(head, value);
      if (head.length > 4 << 20) throw new Error("no moov box in the first 4 MiB of " + url);
    }
    const codecs = codecsFromHeaders(res.headers) || codecsFromInit(head.subarray(0, initEnd)) || FALLBACK_CODECS;
    const mime = 'video/mp4; codecs="' + codecs + '"';
    if (!MS.isTypeSupported(mime)) throw new Error("this browser cannot play " + mime);

    const ms = new MS();
    this.video.disableRemotePlayback = true; // ManagedMediaSource plays only without AirPlay
    this.video.src = URL.createObjectURL(ms);
    await new Promise((ok) => ms.addEventListener("sourceopen", ok, { once: true }));
    URL.revokeObjectURL(this.video.src);
    if (abort.signal.aborted) return;
    const sb = ms.addSourceBuffer(mime);
    const feed = new Feed(sb, this.video, (e) => {
      if (this.url === url) this.ended(url, "the browser refused the stream's data: " + e.message, true);
    });
    this.feed = feed;
    feed.push(head);
    this.onState("playing " + url + " (" + codecs + ")", false);
    this.timer = setInterval(() => { this.keepLive(); feed.pump(); }, 250);
    this.userPaused = false;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      feed.push(value);
    }
  }

  // keepLive starts playback once media is buffered and holds it near the
  // newest frame: a small lag is caught up by playing faster, a large one
  // (a stall, a background tab) by jumping.
  keepLive() {
    const v = this.video;
    const b = v.buffered;
    if (!b.length || this.userPaused) return;
    const end = b.end(b.length - 1);
    const lag = end - v.currentTime;
    if (v.currentTime < b.start(0) || lag > SEEK_LAG) {
      this.seeking = true;
      v.currentTime = Math.max(b.start(b.length - 1), end - LIVE_LAG);
      this.seeking = false;
    } else {
      v.playbackRate = lag > LIVE_LAG * 2 ? 1.1 : 1;
    }
    if (v.paused) v.play().catch(() => {}); // refused autoplay: the controls still work
  }
}

// Feed appends chunks to a SourceBuffer one at a time (it takes no new
// data while updating) and drops media played long ago, so a page left
// open does not grow without bound.
class Feed {
  // fail hears an append the SourceBuffer refused; the feed stops then.
  constructor(sb, video, fail) {
    this.sb = sb;
    this.video = video;
    this.fail = fail;
    this.queue = [];
    this.closed = false; // the player moved on: the SourceBuffer may be gone
    sb.addEventListener("updateend", () => this.pump());
  }

  push(chunk) {
    this.queue.push(chunk);
    this.pump();
  }

  pump() {
    const sb = this.sb;
    if (this.closed || sb.updating) return;
    const b = sb.buffered;
    const t = this.video.currentTime;
    if (b.length && t - b.start(0) > 2 * KEEP_BEHIND) {
      sb.remove(b.start(0), t - KEEP_BEHIND);
      return;
    }
    if (!this.queue.length) return;
    const chunk = this.queue.length === 1 ? this.queue.pop() : concat(...this.queue.splice(0));
    try {
      sb.appendBuffer(chunk);
    } catch (e) {
      if (e.name !== "QuotaExceededError" || !b.length) {
        this.closed = true;
        this.fail(e);
        return;
      }
      this.queue.unshift(chunk); // the buffer is full: free the played part, then retry
      sb.remove(b.start(0), Math.max(b.start(0) + 1, t - 1));
    }
  }
}

function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// codecsFromHeaders reads the codecs Berth names for the stream: the
// codecs parameter of Content-Type (RFC 6381), or X-Codecs.
function codecsFromHeaders(h) {
  const ct = h.get("Content-Type") || "";
  const m = /codecs\s*=\s*"?([^";]+)"?/i.exec(ct);
  if (m) return m[1].trim();
  return (h.get("X-Codecs") || "").trim() || null;
}

// boxes lists the ISO BMFF boxes (ISO/IEC 14496-12 4.2) in b[from:to].
function boxes(b, from, to) {
  const out = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = from;
  while (at + 8 <= to) {
    let size = dv.getUint32(at);
    const type = String.fromCharCode(b[at + 4], b[at + 5], b[at + 6], b[at + 7]);
    let head = 8;
    if (size === 1) {
      if (at + 16 > to) break;
      size = dv.getUint32(at + 8) * 2 ** 32 + dv.getUint32(at + 12);
      head = 16;
    } else if (size === 0) {
      size = to - at;
    }
    if (size < head) break;
    out.push({ type, start: at, body: at + head, end: at + size });
    at += size;
  }
  return out;
}

// initSegmentEnd is the offset just past a complete moov box at the top
// level of b, or 0 while it has not all arrived.
function initSegmentEnd(b) {
  for (const box of boxes(b, 0, b.length)) {
    if (box.end > b.length) return 0;
    if (box.type === "moov") return box.end;
  }
  return 0;
}

// codecsFromInit builds the RFC 6381 codecs string from the sample
// entries in an init segment: avc1/avc3 (avcC), hvc1/hev1 (hvcC), mp4a
// (esds), Opus. null when no track is understood.
function codecsFromInit(b) {
  const found = [];
  const walk = (from, to) => {
    for (const box of boxes(b, from, to)) {
      const end = Math.min(box.end, to);
      switch (box.type) {
        case "moov": case "trak": case "mdia": case "minf": case "stbl":
          walk(box.body, end); break;
        case "stsd": // full box header (4) and entry count (4), then the sample entries
          walk(box.body + 8, end); break;
        case "avc1": case "avc3": case "hvc1": case "hev1": {
          // A visual sample entry has 78 bytes of fields before its child boxes.
          const c = boxes(b, box.body + 78, end).find((x) => x.type === "avcC" || x.type === "hvcC");
          if (c) found.push(c.type === "avcC" ? avcCodec(box.type, b, c.body) : hevcCodec(box.type, b, c.body));
          break;
        }
        case "mp4a": {
          // An audio sample entry has 28 bytes of fields before its child boxes.
          const e = boxes(b, box.body + 28, end).find((x) => x.type === "esds");
          found.push((e && aacCodec(b, e.body + 4, e.end)) || "mp4a.40.2");
          break;
        }
        case "Opus":
          found.push("opus"); break;
      }
    }
  };
  walk(0, b.length);
  return found.length ? found.join(",") : null;
}

const hex2 = (n) => n.toString(16).padStart(2, "0");

// avcCodec: avc1.PPCCLL from AVCDecoderConfigurationRecord's profile,
// constraint flags and level (ISO/IEC 14496-15 5.3.3).
function avcCodec(entry, b, at) {
  return entry + "." + hex2(b[at + 1]) + hex2(b[at + 2]) + hex2(b[at + 3]);
}

// hevcCodec follows ISO/IEC 14496-15 Annex E: profile space and idc,
// compatibility flags bit-reversed in hex, tier and level, constraint bytes
// without trailing zeros.
function hevcCodec(entry, b, at) {
  const space = ["", "A", "B", "C"][b[at + 1] >> 6];
  const tier = (b[at + 1] >> 5) & 1 ? "H" : "L";
  const idc = b[at + 1] & 31;
  let compat = 0;
  for (let i = 0; i < 4; i++) {
    for (let bit = 0; bit < 8; bit++) {
      if (b[at + 2 + i] & (0x80 >> bit)) compat |= 1 << (i * 8 + bit);
    }
  }
  const cons = Array.from(b.subarray(at + 6, at + 12));
  while (cons.length && cons[cons.length - 1] === 0) cons.pop();
  let s = entry + "." + space + idc + "." + (compat >>> 0).toString(16) + "." + tier + b[at + 12];
  for (const c of cons) s += "." + c.toString(16).toUpperCase();
  return s;
}

// aacCodec reads the ES descriptor (ISO/IEC 14496-1 7.2.6.5) down to the
// decoder config: mp4a.40.<audio object type> for MPEG-4 audio.
function aacCodec(b, at, end) {
  const desc = () => { // tag, then a length of 1 to 4 bytes of 7 bits
    const tag = b[at++];
    let len = 0;
    for (let i = 0; i < 4; i++) {
      const x = b[at++];
      len = (len << 7) | (x & 0x7f);
      if (!(x & 0x80)) break;
    }
    return { tag, len };
  };
  if (at >= end || desc().tag !== 3) return null;
  at += 2; // ES_ID
  const flags = b[at++];
  if (flags & 0x80) at += 2;             // streamDependenceFlag
  if (flags & 0x40) at += 1 + b[at];     // URL_Flag
  if (flags & 0x20) at += 2;             // OCRstreamFlag
  if (at >= end || desc().tag !== 4) return null;
  const oti = b[at];
  at += 13;
  if (oti !== 0x40) return "mp4a." + hex2(oti);
  if (at >= end || desc().tag !== 5) return "mp4a.40.2";
  let aot = b[at] >> 3;
  if (aot === 31) aot = 32 + (((b[at] & 7) << 3) | (b[at + 1] >> 5));
  return "mp4a.40." + aot;
}
