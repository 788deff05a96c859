// Live page: microphone -> AudioWorklet -> 16 kHz s16le -> /v1/stream; /v1/status below.
"use strict";
const RATE = 16000;
const token = new URLSearchParams(location.search).get("token");
const q = token ? "?token=" + encodeURIComponent(token) : "";
const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
const $ = (id) => document.getElementById(id);
const fmt = (s) => { const m = Math.floor(s / 60); return m + ":" + (s - 60 * m).toFixed(1).padStart(4, "0"); };
let ws = null, ctx = null, stream = null, chunkMs = 100, pending = [], pendingLen = 0, phase = 0;

function downsample(block, inRate) {
  if (inRate === RATE) return Array.from(block);
  // Linear interpolation at RATE; phase carries the fractional position across blocks.
  const step = inRate / RATE, out = [];
  let pos = phase;
  while (pos < block.length - 1) {
    const i = Math.floor(pos), f = pos - i;
    out.push(block[i] * (1 - f) + block[i + 1] * f);
    pos += step;
  }
  phase = pos - block.length;
  if (phase < -1) phase = -1;
  return out;
}

function send(samples) {
  pending.push(...samples); pendingLen += samples.length;
  const want = RATE * chunkMs / 1000;
  if (pendingLen < want || !ws || ws.readyState !== 1) return;
  const pcm = new Int16Array(pending.length);
  pending.forEach((x, i) => { pcm[i] = Math.max(-32768, Math.min(32767, Math.round(x * 32767))); });
  ws.send(pcm.buffer); pending = []; pendingLen = 0;
}

// Partials: one merged stream per utterance (the supervisor's). Finals: one row per
// utterance; a provisional (first-pass) final is styled apart until the accurate final of
// the same utterance_id replaces it in place.
function onEvent(e) {
  if (e.type === "advice") { chunkMs = e.chunk_ms; $("info").textContent = "chunk " + chunkMs + " ms"; }
  else if (e.type === "partial") { $("partial").textContent = e.text; $("partial").dataset.u = e.utterance_id; }
  else if (e.type === "final") {
    if ($("partial").dataset.u === e.utterance_id) { $("partial").textContent = ""; delete $("partial").dataset.u; }
    let row = document.querySelector('[data-u="' + CSS.escape(e.utterance_id) + '"].final');
    if (row && e.provisional && !row.classList.contains("provisional")) return;  // accurate one shown already
    if (!e.text) { if (row) row.remove(); return; }
    if (!row) { row = document.createElement("div"); row.dataset.u = e.utterance_id; $("finals").appendChild(row); }
    row.className = e.provisional ? "final provisional" : "final";
    row.title = e.provisional ? "provisional: the accurate transcript replaces it" : "";
    row.innerHTML = '<span class="t">[' + fmt(e.start_s) + " – " + fmt(e.end_s) + "]</span>";
    row.appendChild(document.createTextNode(e.text));
  } else if (e.type === "error") { $("info").textContent = "error " + e.code + ": " + e.message; }
}

async function start() {
  stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  try { ctx = new AudioContext({ sampleRate: RATE }); } catch (err) { ctx = new AudioContext(); }  // browser resampler when it can
  await ctx.audioWorklet.addModule("/worklet.js");
  const src = ctx.createMediaStreamSource(stream), tap = new AudioWorkletNode(ctx, "tap");
  ws = new WebSocket(wsBase + "/v1/stream" + q);
  ws.onopen = () => ws.send(JSON.stringify({ type: "start", sample_rate: RATE, format: "s16le", channels: 1, name: "browser" }));
  ws.onmessage = (m) => onEvent(JSON.parse(m.data));
  ws.onclose = (c) => { $("info").textContent += " (closed " + c.code + ")"; };
  tap.port.onmessage = (m) => send(downsample(m.data, ctx.sampleRate));
  src.connect(tap);
  $("rec").textContent = "Stop"; $("info").textContent = "recording at " + ctx.sampleRate + " Hz -> 16 kHz";
}

function stop() {
  if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "end" }));
  if (stream) stream.getTracks().forEach((t) => t.stop());
  if (ctx) ctx.close();
  ctx = null; stream = null; $("rec").textContent = "Start recording";
}

$("rec").onclick = () => (ctx ? stop() : start().catch((err) => { $("info").textContent = String(err); }));

function table(head, rows) {
  return "<table><tr>" + head.map((h) => "<th>" + h + "</th>").join("") + "</tr>" +
    rows.map((r) => "<tr>" + r.map((c) => "<td>" + c + "</td>").join("") + "</tr>").join("") + "</table>";
}

function showStatus(s) {
  const actors = table(["actor", "state", "restarts", "chunk ms", "CPU %", "RSS MB"],
    (s.actors || []).map((a) => [a.id, a.state, a.restarts, a.chunk_ms.toFixed(0), a.cpu_percent.toFixed(0), (a.rss_bytes / 1048576).toFixed(0)]));
  const rings = table(["ring", "reader", "fill", "lost", "overruns", "underruns"],
    (s.rings || []).flatMap((r) => r.readers.map((d) => [r.name, d.reader, d.fill, d.dropped_frames, d.overruns, d.underruns])));
  const lat = table(["latency", "p50 ms", "p95 ms", "n"],
    Object.entries(s.latency || {}).map(([k, v]) => [k, (v.p50 * 1e3).toFixed(0), (v.p95 * 1e3).toFixed(0), v.count]));
  const gw = s.gateway ? "<p>gateway: " + s.gateway.live + " live streams; " +
    Object.entries(s.gateway.counters).filter(([, v]) => v).map(([k, v]) => k + "=" + v).join(" ") + "</p>" : "";
  $("state").innerHTML = actors + rings + lat + gw;
}

(function statusFeed() {
  const st = new WebSocket(wsBase + "/v1/status" + q);
  st.onmessage = (m) => { const e = JSON.parse(m.data); if (e.type === "status") showStatus(e.status); };
  st.onclose = () => setTimeout(statusFeed, 2000);
})();
