// Berth's status page: polls getMediaList (ZLMediaKit's API) and
// /berth/status.json every REFRESH_MS and draws streams, listeners and
// recent warnings. Data is always set as text, never as markup: stream
// names and log lines come from clients.
"use strict";

const REFRESH_MS = 1500;
const SECRET_KEY = "berth.secret";
const $ = (id) => document.getElementById(id);

// el builds an element: props are attributes, except text, class and on*
// handlers; children are nodes or strings.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

const page = {
  cards: new Map(),     // stream path -> card (see streamCard)
  bytes: new Map(),     // stream path -> {total, at}: the last totalBytes, for the current bitrate
  preview: null,        // the path shown in the preview
  listenersKey: "",
  warningsKey: "",
  player: null,
};

// secret: ?secret= in the address wins over the one the form stored.
function secret() {
  return new URLSearchParams(location.search).get("secret") || localStorage.getItem(SECRET_KEY) || "";
}

async function call(path) {
  const u = new URL(path, location.href);
  u.searchParams.set("secret", secret());
  const res = await fetch(u, { cache: "no-store" });
  if (!res.ok) throw new Error(path + " answered " + res.status);
  return res.json();
}

// refresh draws one poll. It returns false when the secret was refused:
// polling stops until the form is sent, as each refused call is a warning
// in Berth's log.
async function refresh() {
  let media, status;
  try {
    [media, status] = await Promise.all([call("/index/api/getMediaList"), call("/berth/status.json")]);
  } catch (e) {
    show($("offline"), "Berth is not answering at " + location.host + " (" + e.message + "); retrying…");
    return true;
  }
  const refused = [media, status].find((r) => r.code === -100);
  if (refused) {
    showLogin(refused.msg);
    return false;
  }
  const failed = [media, status].find((r) => r.code !== 0);
  if (failed) {
    show($("offline"), "Berth answered: " + failed.msg);
    return true;
  }
  $("offline").hidden = true;
  $("login").hidden = true;
  $("status").hidden = false;
  $("forget").hidden = !localStorage.getItem(SECRET_KEY);
  render(media.data, status.data);
  return true;
}

function show(node, text) {
  node.textContent = text;
  node.hidden = false;
}

function showLogin(why) {
  $("status").hidden = true;
  $("server").textContent = "the secret is needed";
  $("login-why").textContent = why;
  $("login").hidden = false;
  page.player.stop();
  page.preview = null;
}

function render(media, st) {
  const s = st.server;
  $("server").textContent = "version " + s.version + " · pid " + s.pid + " · up " + duration(s.uptime_sec) +
    " · instance " + s.instance + " · " + s.go;
  const ports = portsOf(st.listeners);
  renderStreams(uniqueStreams(media), st.readers || {}, ports);
  renderListeners(st.listeners);
  renderProxies(st.proxies || []);
  renderWarnings(st.warnings, st.warnings_total);
  renderPushers(st.pushers || []);
  renderCluster(st.cluster);
}

// renderCluster shows the registry's nodes and streams ([cluster] redis);
// the section shows only on a node in a cluster.
function renderCluster(c) {
  $("cluster-section").hidden = !c;
  if (!c) return;
  $("cluster-summary").textContent = "this node: " + c.node_id + " · registry " + c.redis +
    (c.redis_up ? "" : " · cannot be read: " + (c.error || "unreachable") + " (this node keeps serving what it has)");
  $("cluster-summary").className = c.redis_up ? "" : "problem";
  const since = (t) => ((Date.now() - Date.parse(t)) / 1000).toFixed(1) + " s ago";
  const rate = (b) => (b / 1e6).toFixed(1) + " Mb/s";
  document.querySelector("#cluster-nodes tbody").replaceChildren(...(c.nodes || []).map((n) => el("tr", {},
    el("td", { text: n.node_id + (n.node_id === c.node_id ? " (this node)" : "") }), el("td", { text: n.rtsp || n.rtmp || "" }),
    el("td", { text: n.load.cpu_percent + "%" }), el("td", { text: String(n.load.readers) }),
    el("td", { text: rate(n.load.egress_bps) }), el("td", { text: n.load.streams + " (+" + n.load.edges + " pulled)" }),
    el("td", { text: since(n.heartbeat) }))));
  const edges = {};
  for (const e of c.edges || []) edges[e.path] = e.state;
  document.querySelector("#cluster-streams tbody").replaceChildren(...(c.streams || []).map((s) => el("tr", {},
    el("td", { text: s.path }), el("td", { text: s.node_id }), el("td", { text: s.publisher }),
    el("td", { text: edges[s.path] || (s.node_id === c.node_id ? "origin" : "-") }))));
}

// renderPushers lists addStreamPusherProxy's pushers; the section shows
// only when there is one.
function renderPushers(pushers) {
  $("pushers-section").hidden = pushers.length === 0;
  const mb = (b) => (b / 1e6).toFixed(1) + " MB";
  document.querySelector("#pushers tbody").replaceChildren(...pushers.map((p) => el("tr", {},
    el("td", { text: p.path }), el("td", { text: p.url }),
    el("td", { class: p.status === "live" ? "ok" : "problem", text: p.status }), el("td", { text: mb(p.bytes) }))));
}

function portsOf(listeners) {
  const p = {};
  for (const l of listeners) if (l.network === "tcp" || l.name === "srt" || l.name === "rtc") p[l.name] = l.port;
  return p;
}

// uniqueStreams: getMediaList lists a stream once per schema it can be read in.
function uniqueStreams(media) {
  const seen = new Map();
  for (const m of media) {
    const path = m.app + "/" + m.stream;
    if (!seen.has(path)) seen.set(path, m);
  }
  return [...seen.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

function renderStreams(streams, readers, ports) {
  $("stream-count").textContent = streams.length ? "(" + streams.length + ")" : "";
  $("no-streams").hidden = streams.length > 0;
  if (ports.rtmp) $("push-example").textContent = "ffmpeg -re -f lavfi -i testsrc=size=640x360:rate=25 -f lavfi -i sine " +
    "-c:v libx264 -pix_fmt yuv420p -g 50 -c:a aac -f flv " + urlFor("rtmp", ports.rtmp, "live/test");
  const live = new Set();
  const box = $("streams");
  const portsKey = JSON.stringify(ports);
  streams.forEach(([path, m], i) => {
    live.add(path);
    let card = page.cards.get(path);
    if (!card || card.portsKey !== portsKey) {
      if (card) card.root.remove();
      card = streamCard(path, ports);
      card.portsKey = portsKey;
      page.cards.set(path, card);
    }
    // Move a card only when the order changed: a moved node loses the
    // reader's text selection and focus.
    if (box.children[i] !== card.root) box.insertBefore(card.root, box.children[i] || null);
    updateCard(card, path, m, readers[path]);
  });
  for (const [path, card] of page.cards) {
    if (!live.has(path)) {
      card.root.remove();
      page.cards.delete(path);
      page.bytes.delete(path);
    }
  }
  if (page.preview && !live.has(page.preview)) page.preview = null;
  if (!page.preview && streams.length) page.preview = streams[0][0];
  for (const [path, card] of page.cards) card.preview.disabled = path === page.preview;
  $("preview").hidden = !page.preview;
  if (page.preview && httpPort(ports)) {
    const pm = (streams.find(([p]) => p === page.preview) || [])[1];
    page.player.play(webrtcPlayable(pm, ports) ? "whep:" + whepURL(page.preview) : "/" + page.preview + ".live.mp4");
  } else if (!page.preview) {
    page.player.stop();
    $("preview-state").textContent = "no stream is live";
  }
}

// webrtcPlayable: the preview plays over WHEP (sub-second) when WebRTC is
// on and every track is one a browser takes over WebRTC as is: H.264,
// Opus, G.711. AAC (most pushes) and H.265 keep the HTTP-fMP4 preview.
function webrtcPlayable(m, ports) {
  if (!ports.rtc || !m || !m.tracks || !m.tracks.length || typeof RTCPeerConnection === "undefined") return false;
  const ok = new Set(["CodecH264", "CodecOpus", "CodecG711A", "CodecG711U"]);
  return m.tracks.every((t) => ok.has(t.codec_id_name)) && m.tracks.some((t) => t.codec_id_name === "CodecH264");
}

function whepURL(path) {
  const [app, ...rest] = path.split("/");
  return "/index/api/whep?app=" + encodeURIComponent(app) + "&stream=" + encodeURIComponent(rest.join("/"));
}

function scheme(plain) {
  if (location.protocol !== "https:") return plain;
  return plain === "ws" ? "wss" : "https";
}

// httpPort is the port of the scheme this page came over (HTTP or HTTPS),
// so the URLs an HTTPS page lists are HTTPS ones.
function httpPort(ports) {
  return location.protocol === "https:" ? ports.https : ports.http;
}

function urlFor(proto, port, path) {
  return proto + "://" + location.hostname + ":" + port + "/" + path;
}

// streamURLs: what a client dials for each protocol, with the host this
// page was loaded from and the ports Berth bound. RTSP, RTMP and SRT take pushes.
function streamURLs(path, ports) {
  const rows = [];
  if (ports.rtsp) rows.push(["RTSP", "push & play", urlFor("rtsp", ports.rtsp, path)]);
  if (ports.rtmp) rows.push(["RTMP", "push & play", urlFor("rtmp", ports.rtmp, path)]);
  if (ports.rtsps) rows.push(["RTSPS", "push & play", urlFor("rtsps", ports.rtsps, path)]);
  if (ports.rtmps) rows.push(["RTMPS", "push & play", urlFor("rtmps", ports.rtmps, path)]);
  if (ports.srt) { // MPEG-TS over SRT: the stream id names the path and the mode (docs/srt.md)
    const srt = "srt://" + location.hostname + ":" + ports.srt + "?streamid=#!::r=" + path + ",m=";
    rows.push(["SRT", "push", srt + "publish"], ["SRT", "play", srt + "request"]);
  }
  const web = httpPort(ports);
  if (web) {
    rows.push(["HTTP-FLV", "play", urlFor(scheme("http"), web, path + ".live.flv")]);
    rows.push(["WS-FLV", "play", urlFor(scheme("ws"), web, path + ".live.flv")]);
    rows.push(["HTTP-fMP4", "play", urlFor(scheme("http"), web, path + ".live.mp4")]);
    rows.push(["HTTP-TS", "play", urlFor(scheme("http"), web, path + ".live.ts")]);
    rows.push(["HLS", "play", urlFor(scheme("http"), web, path + "/hls.m3u8")]);
    rows.push(["LL-HLS (fMP4)", "play", urlFor(scheme("http"), web, path + "/hls.fmp4.m3u8")]);
    if (ports.rtc) { // WebRTC: offers over HTTP, media over [rtc] port (docs/webrtc.md)
      const [app, ...rest] = path.split("/");
      const q = "?app=" + encodeURIComponent(app) + "&stream=" + encodeURIComponent(rest.join("/"));
      rows.push(["WebRTC (WHIP)", "push", urlFor(scheme("http"), web, "index/api/whip") + q]);
      rows.push(["WebRTC (WHEP)", "play", urlFor(scheme("http"), web, "index/api/whep") + q]);
    }
  }
  return rows;
}

function streamCard(path, ports) {
  const c = {
    origin: el("span", { class: "muted" }),
    tracks: el("ul", { class: "tracks" }),
    bitrate: el("span"),
    readers: el("span"),
    alive: el("span"),
    tracksKey: "",
  };
  c.preview = el("button", { type: "button", text: "preview", onclick: () => { page.preview = path; refreshSoon(); } });
  const urls = el("table", { class: "urls" });
  for (const [proto, use, url] of streamURLs(path, ports)) {
    urls.append(el("tr", {},
      el("th", { text: proto }), el("td", { class: "muted", text: use }),
      el("td", {}, el("code", { text: url })),
      el("td", {}, el("button", { type: "button", class: "copy", title: "copy " + url, text: "copy", onclick: () => copy(url) }))));
  }
  c.root = el("article", { class: "stream", "data-path": path },
    el("header", {}, el("h3", { text: path }), c.origin, c.preview),
    el("dl", {},
      el("dt", { text: "tracks" }), el("dd", {}, c.tracks),
      el("dt", { text: "bitrate" }), el("dd", {}, c.bitrate),
      el("dt", { text: "readers" }), el("dd", {}, c.readers),
      el("dt", { text: "live for" }), el("dd", {}, c.alive)),
    urls);
  return c;
}

function updateCard(c, path, m, byProto) {
  c.origin.textContent = m.originTypeStr + (m.originUrl ? " from " + m.originUrl : "");
  const key = JSON.stringify(m.tracks);
  if (key !== c.tracksKey) {
    c.tracksKey = key;
    c.tracks.replaceChildren(...m.tracks.map((t) => el("li", { text: trackText(t) })));
  }
  c.bitrate.textContent = bitrate(path, m);
  const parts = Object.entries(byProto || {}).sort().map(([p, n]) => p + " " + n);
  c.readers.textContent = parts.length ? parts.join(", ") : m.totalReaderCount ? String(m.totalReaderCount) : "none";
  c.alive.textContent = duration(m.aliveSecond);
}

function trackText(t) {
  const name = String(t.codec_id_name || "").replace(/^Codec/, "");
  if (t.codec_type === 0) {
    let s = name;
    if (t.width) s += " " + t.width + "×" + t.height;
    if (t.fps) s += " @ " + t.fps + " fps";
    return t.ready === false ? s + " (waiting for parameters)" : s;
  }
  let s = name;
  if (t.sample_rate) s += " " + t.sample_rate + " Hz";
  if (t.channels) s += ", " + t.channels + " ch";
  return s;
}

// bitrate: bytes received since the last refresh; the average over the
// stream's life (bytesSpeed) until there are two samples.
function bitrate(path, m) {
  const now = performance.now();
  const last = page.bytes.get(path);
  page.bytes.set(path, { total: m.totalBytes, at: now });
  let bps = m.bytesSpeed * 8;
  if (last && now > last.at && m.totalBytes >= last.total) bps = (m.totalBytes - last.total) * 8000 / (now - last.at);
  if (bps >= 1e6) return (bps / 1e6).toFixed(2) + " Mb/s";
  return Math.round(bps / 1e3) + " kb/s";
}

function renderListeners(listeners) {
  const key = JSON.stringify(listeners);
  if (key === page.listenersKey) return;
  page.listenersKey = key;
  const rows = [];
  for (const l of listeners) {
    const probes = l.probes.length
      ? l.probes.map((p) => p.host + (p.ok ? " ok" : " failed")).join(", ")
      : "not probed";
    rows.push(el("tr", { class: l.state === "ok" ? "" : "problem-row" },
      el("td", { text: l.listener }), el("td", { text: l.addrs.join(", ") }),
      el("td", { class: l.state === "ok" ? "ok" : "problem", text: l.state }), el("td", { text: probes })));
    const lines = [...l.notices, ...l.probes.filter((p) => !p.ok).map((p) => p.line), ...l.shadows];
    if (lines.length) rows.push(el("tr", { class: "detail" }, el("td", { colspan: 4 }, ...lines.map((t) => el("p", { text: t })))));
  }
  document.querySelector("#listeners tbody").replaceChildren(...rows);
}

// renderProxies lists the pulls: live, or connecting, retrying N (cause), stopped: cause.
function renderProxies(proxies) {
  $("proxies-section").hidden = proxies.length === 0;
  document.querySelector("#proxies tbody").replaceChildren(...proxies.map((p) =>
    el("tr", { class: p.state === "live" || p.state === "idle" ? "" : "problem-row" },
      el("td", { text: p.path }), el("td", { text: p.url }),
      el("td", { class: p.state === "live" ? "ok" : p.state === "idle" ? "" : "problem", text: p.summary }))));
}

function renderWarnings(warnings, total) {
  const key = total + ":" + warnings.length;
  if (key === page.warningsKey) return;
  page.warningsKey = key;
  $("no-warnings").hidden = warnings.length > 0;
  $("warning-count").textContent = total > warnings.length ? "(last " + warnings.length + " of " + total + ")" : "";
  $("warnings").replaceChildren(...warnings.slice().reverse().map((w) => el("li", { class: w.level.toLowerCase() },
    el("time", { datetime: w.time, text: new Date(w.time).toLocaleTimeString() }), " ",
    el("b", { text: w.level }), " ", w.message, w.attrs ? el("span", { class: "muted", text: " " + w.attrs }) : null)));
}

function duration(sec) {
  sec = Math.max(0, Math.floor(sec));
  const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = sec % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (d) return d + "d " + h + "h " + pad(m) + "m";
  if (h) return h + "h " + pad(m) + "m " + pad(s) + "s";
  if (m) return m + "m " + pad(s) + "s";
  return s + "s";
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("copied " + text);
  } catch {
    // No clipboard API outside secure contexts (plain http from another host).
    const ta = el("textarea", { class: "offscreen" });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    toast(ok ? "copied " + text : "select the address and copy it by hand");
  }
}

let toastTimer = 0;
function toast(text) {
  show($("toast"), text);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $("toast").hidden = true; }, 2000);
}

let timer = 0;
async function loop() {
  clearTimeout(timer);
  let again = true;
  try {
    again = await refresh();
  } finally {
    if (again) timer = setTimeout(loop, REFRESH_MS);
  }
}
function refreshSoon() { loop(); }

function start() {
  page.player = new LivePlayer($("preview"), (text, problem) => {
    $("preview-state").textContent = text;
    $("preview-state").className = problem ? "problem" : "muted";
  });
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem(SECRET_KEY, $("secret").value.trim());
    const u = new URL(location.href);
    if (u.searchParams.has("secret")) { // the stored secret replaces a wrong one in the address
      u.searchParams.delete("secret");
      history.replaceState(null, "", u);
    }
    refreshSoon();
  });
  $("forget").addEventListener("click", () => {
    localStorage.removeItem(SECRET_KEY);
    refreshSoon();
  });
  loop();
}

start();
