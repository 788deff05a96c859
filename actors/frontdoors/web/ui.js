// Live page: microphone -> AudioWorklet -> 16 kHz s16le -> /v1/stream; /v1/status below.
"use strict";
const RATE = 16000;
const token = new URLSearchParams(location.search).get("token");
const q = token ? "?token=" + encodeURIComponent(token) : "";
const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
const $ = (id) => document.getElementById(id);
const fmt = (s) => { const m = Math.floor(s / 60); return m + ":" + (s - 60 * m).toFixed(1).padStart(4, "0"); };
const secs = (s) => (s < 10 ? s.toFixed(1) : s.toFixed(0)) + " s";
let ws = null, audio = null, session = null, chunkMs = 100, pending = [], phase = 0;

// ---- connection indicator: idle, connecting, connected, finishing, disconnected, error ----
function setConn(state, text) {
  $("conn").dataset.state = state;
  $("conn-text").textContent = text;
  const rec = $("rec"), busy = state === "connecting" || state === "finishing";
  rec.disabled = busy;
  rec.textContent = state === "connected" ? "Stop" : busy ? (state === "finishing" ? "Finishing…" : "Starting…") : "Start listening";
  rec.classList.toggle("stop", state === "connected");
}
function say(text, bad) { $("info").textContent = text; $("info").classList.toggle("bad", !!bad); }
const CLOSED = { 1000: "", 1005: "", 1001: "the server is shutting down", 1006: "the connection was lost",
  1008: "the server refused the connection (token or origin)", 1011: "the server had an internal error",
  1013: "the server is busy — try again in a moment" };

// ---- level meter: loudness of the last blocks, in dB mapped to 0..1 (-60 dBFS .. 0), falling slowly ----
let level = 0, levelAt = 0, sumSq = 0, count = 0;
function meter(block) {
  for (let i = 0; i < block.length; i++) sumSq += block[i] * block[i];
  count += block.length;
  const now = performance.now();
  if (now - levelAt < 50) return;
  const db = 10 * Math.log10(sumSq / Math.max(1, count) + 1e-10);
  level = Math.max(Math.min(1, Math.max(0, (db + 60) / 60)), level - 0.08);
  $("level").value = level; $("level").textContent = Math.round(db) + " dB";
  levelAt = now; sumSq = 0; count = 0;
}

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

function send(samples, flush) {
  pending.push(...samples);
  if ((pending.length < RATE * chunkMs / 1000 && !flush) || !pending.length || !ws || ws.readyState !== 1) return;
  const pcm = new Int16Array(pending.length);
  pending.forEach((x, i) => { pcm[i] = Math.max(-32768, Math.min(32767, Math.round(x * 32767))); });
  ws.send(pcm.buffer); pending = [];
}

// ---- transcript: partials update one line; finals get one row per utterance. A provisional
// (first-pass) final is styled apart until the accurate final of the same utterance_id
// replaces it in place; "fast" finals are first-pass text that stays (no accurate pass). ----
function onEvent(e) {
  if (e.type === "advice") chunkMs = e.chunk_ms;
  else if (e.type === "partial") { $("partial").textContent = e.text; $("partial").dataset.u = e.utterance_id; }
  else if (e.type === "final") final(e);
  else if (e.type === "error") say("The server said: " + e.message, true);
}

function final(e) {
  const partial = $("partial");
  if (partial.dataset.u === e.utterance_id) { partial.textContent = ""; delete partial.dataset.u; }
  let row = [...session.children].find((r) => r.dataset.u === e.utterance_id);
  if (row && e.provisional && !row.classList.contains("provisional")) return;  // the accurate one is shown
  if (!e.text) { if (row) row.remove(); return; }
  if (!row) {
    row = document.createElement("p"); row.dataset.u = e.utterance_id;
    row.innerHTML = '<span class="t"></span><span class="txt"></span>';
    session.appendChild(row); $("empty").hidden = true;
  }
  const kind = e.provisional ? "provisional" : e.pass === 2 ? "accurate" : "fast";
  row.className = "final " + kind;
  row.title = { provisional: "First guess: the accurate pass is checking it",
    accurate: "Checked by the accurate pass", fast: "Final (fast pass)" }[kind];
  row.firstChild.textContent = fmt(e.start_s) + " – " + fmt(e.end_s);
  row.lastChild.textContent = e.text;
}

// ---- recording ----
async function start() {
  setConn("connecting", "Connecting…"); say("");
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  let ctx;
  try { ctx = new AudioContext({ sampleRate: RATE }); } catch (err) { ctx = new AudioContext(); }  // browser resampler when it can
  audio = { stream, ctx, src: null, tap: null };
  await ctx.audioWorklet.addModule("/worklet.js");
  if (audio === null) return;  // stopped meanwhile
  const rate = ctx.sampleRate, src = ctx.createMediaStreamSource(stream), tap = new AudioWorkletNode(ctx, "tap");
  audio.src = src; audio.tap = tap; phase = 0; pending = [];
  session = document.createElement("div"); session.className = "session"; $("finals").appendChild(session);
  const sock = new WebSocket(wsBase + "/v1/stream" + q);
  ws = sock;
  sock.onopen = () => {
    sock.send(JSON.stringify({ type: "start", sample_rate: RATE, format: "s16le", channels: 1, name: "browser" }));
    setConn("connected", "Connected — listening");
    const label = stream.getAudioTracks()[0]?.label;
    say(label ? "Microphone: " + label : "");
  };
  sock.onmessage = (m) => onEvent(JSON.parse(m.data));
  sock.onclose = (c) => {
    if (ws !== sock) return;
    ws = null; stopAudio();
    const why = CLOSED[c.code] ?? (c.reason || "closed with code " + c.code);
    setConn(why ? "error" : "disconnected", "Disconnected");
    if (why) say("Disconnected: " + why + ".", true);
  };
  tap.port.onmessage = (m) => { meter(m.data); send(downsample(m.data, rate), false); };
  src.connect(tap);
}

function stopAudio() {
  if (!audio) return;
  const { stream, ctx, src, tap } = audio;
  audio = null;
  if (tap) { tap.port.onmessage = null; tap.disconnect(); }
  if (src) src.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  ctx.close().catch(() => {});
  level = 0; $("level").value = 0; $("level").textContent = "silent";
}

function stop() {
  stopAudio();
  if (ws && ws.readyState === 1) {
    send([], true);
    ws.send(JSON.stringify({ type: "end" }));
    setConn("finishing", "Finishing the last words…");
  } else if (ws) { ws.close(); }
}

$("rec").onclick = () => {
  if (ws || audio) { stop(); return; }
  start().catch((err) => {
    stopAudio(); if (ws) { const s = ws; ws = null; s.close(); }
    const name = err && err.name;
    setConn("error", "Not connected");
    say(name === "NotAllowedError" ? "Microphone access was refused: allow it for this page and try again."
      : name === "NotFoundError" ? "No microphone found." : "Could not start: " + err, true);
  });
};
$("clear").onclick = () => {
  session = document.createElement("div"); session.className = "session";
  $("finals").replaceChildren(session); $("partial").textContent = ""; $("empty").hidden = false;
};

// ---- the server panel, in plain words (the numbers are under "Technical details") ----
const STAGES = [
  ["capture", "Server's own audio", "its microphone or file"],
  ["feature", "Sound preparation", "cleans and measures the audio"],
  ["inference", "Fast recogniser", "guesses words as you speak"],
  ["refine", "Accurate pass", "re-checks each sentence"],
  ["gateway", "Web connections", "this page and other apps"],
  ["wyoming", "Home Assistant link", "Wyoming protocol"],
];
const STATE_WORDS = { running: ["ready", "ready"], starting: ["starting…", "starting"], backoff: ["restarting…", "starting"],
  stopping: ["stopping…", "starting"], stopped: ["finished", "idle"], failed: ["stopped after errors", "down"] };
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => "&#" + c.charCodeAt(0) + ";");

function stages(actors) {
  return STAGES.map(([prefix, name, what]) => {
    const group = actors.filter((a) => a.id === prefix || a.id.startsWith(prefix + "-"));
    if (!group.length) return "";
    const worst = ["failed", "backoff", "starting", "stopping", "running", "stopped"].find((s) => group.some((a) => a.state === s)) || group[0].state;
    const [word, cls] = STATE_WORDS[worst] || [worst, "starting"];
    const restarts = group.reduce((n, a) => n + a.restarts, 0);
    const cpu = group.reduce((n, a) => n + a.cpu_percent, 0);
    const extra = [group.length > 1 ? group.length + " workers" : "", cpu >= 1 ? "busy " + cpu.toFixed(0) + "\u00a0%" : "",
      restarts ? "recovered " + restarts + "×" : ""].filter(Boolean).join(" · ");
    return '<li class="' + cls + '"><span class="dot" aria-hidden="true"></span><span><b>' + name + "</b><small>" +
      esc(word) + " — " + what + (extra ? " · " + extra : "") + "</small></span></li>";
  }).join("");
}

function facts(s) {
  const out = [], lat = s.latency || {};
  const after = (x) => (x < 0.05 ? "at once" : "about " + secs(x) + " later");
  if (lat.partial) out.push("New words appear about " + secs(lat.partial.p50) + " after the server hears them (most within " + secs(lat.partial.p95) + ").");
  if (lat.final_pass2) out.push("A sentence closes when you pause; its checked version follows " + after(lat.final_pass2.p50) + ".");
  else if (lat.final) out.push("A sentence closes when you pause" + (lat.final.p50 < 0.05 ? "." : ", about " + secs(lat.final.p50) + " after the pause is heard."));
  const lost = (s.rings || []).reduce((n, r) => n + r.readers.reduce((k, d) => k + d.dropped_frames, 0) / (r.sample_rate_hz || RATE), 0);
  out.push(lost > 0 ? secs(lost) + " of audio was lost because the server fell behind." : "No audio lost.");
  if (s.gateway) out.push(s.gateway.live ? s.gateway.live + (s.gateway.live > 1 ? " people or apps are" : " person or app is") + " streaming audio now." : "Nobody is streaming audio now.");
  if (ws) out.push("This page sends your voice every " + secs(chunkMs / 1000) + ".");
  return out.map((f) => "<li>" + esc(f) + "</li>").join("");
}

function table(head, rows) {
  return "<table><tr>" + head.map((h) => "<th>" + h + "</th>").join("") + "</tr>" +
    rows.map((r) => "<tr>" + r.map((c) => "<td>" + esc(c) + "</td>").join("") + "</tr>").join("") + "</table>";
}

function showStatus(s) {
  const up = s.uptime_s || 0;
  $("server").textContent = "Connected to “" + s.instance + "”, running for " +
    (up < 120 ? Math.round(up) + " s" : up < 7200 ? Math.round(up / 60) + " min" : (up / 3600).toFixed(1) + " h") + ".";
  $("stages").innerHTML = stages(s.actors || []);
  const checked = (s.actors || []).some((a) => a.id === "refine");  // else finals are the fast pass's
  for (const [cls, show] of [[".lg-provisional", checked], [".lg-accurate", checked], [".lg-fast", !checked]])
    document.querySelector(cls).hidden = !show;
  $("facts").innerHTML = facts(s);
  const actors = table(["actor", "state", "restarts", "chunk ms", "CPU %", "RSS MB"],
    (s.actors || []).map((a) => [a.id, a.state, a.restarts, (a.chunk_ms == null ? "–" : a.chunk_ms.toFixed(0)), a.cpu_percent.toFixed(0), (a.rss_bytes / 1048576).toFixed(0)]));
  const rings = table(["ring", "reader", "fill", "lost", "overruns", "underruns"],
    (s.rings || []).flatMap((r) => r.readers.map((d) => [r.name, d.reader, d.fill, d.dropped_frames, d.overruns, d.underruns])));
  const lat = table(["latency", "p50 ms", "p95 ms", "n"],
    Object.entries(s.latency || {}).map(([k, v]) => [k, (v.p50 * 1e3).toFixed(0), (v.p95 * 1e3).toFixed(0), v.count]));
  $("state").innerHTML = actors + rings + lat;
}

(function statusFeed() {
  const st = new WebSocket(wsBase + "/v1/status" + q);
  st.onmessage = (m) => { const e = JSON.parse(m.data); if (e.type === "status") showStatus(e.status); };
  st.onclose = () => {
    $("server").textContent = "Can't reach the server — trying again…";
    $("stages").innerHTML = ""; $("facts").innerHTML = "";
    setTimeout(statusFeed, 2000);
  };
})();
