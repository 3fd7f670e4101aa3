// The page of `talkinghead serve`: plain JavaScript, no library, talks only to this server.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("job");
let recording = null; // Blob from the microphone, used when no speech file is chosen
let recorder = null;
let events = null;

function mode() {
  return form.querySelector("input[name=mode]:checked").value;
}

function showMode() {
  const dub = mode() === "dub";
  $("drop-face").hidden = dub;
  $("drop-video").hidden = !dub;
  $("options-generate").hidden = dub;
  $("options-dub").hidden = !dub;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("message").textContent = "";
  $("progress").hidden = true;
  $("submit").disabled = false;
}

function fileChosen(role) {
  const input = $(role);
  $(role + "-name").textContent = input.files.length ? input.files[0].name : "";
  if (role === "audio" && input.files.length) {
    recording = null;
    $("recorded").hidden = true;
  }
}

// drag and drop onto any drop zone puts the file into its input
for (const role of ["face", "video", "audio"]) {
  const zone = $("drop-" + role);
  $(role).addEventListener("change", () => fileChosen(role));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) {
      $(role).files = e.dataTransfer.files;
      fileChosen(role);
    }
  });
}
for (const radio of form.querySelectorAll("input[name=mode]")) radio.addEventListener("change", showMode);

// microphone: MediaRecorder gives WebM/Opus (Chromium) or Ogg/Opus (Firefox); the server decodes both
if (!navigator.mediaDevices || !window.MediaRecorder) {
  $("record").disabled = true;
  $("record-note").textContent = "Recording needs a browser on https:// or on this computer (localhost).";
}
$("record").addEventListener("click", async () => {
  if (recorder && recorder.state === "recording") {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    $("record-note").textContent = "The microphone is not available: " + err.message;
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((t) => t.stop());
    recording = new Blob(chunks, { type: recorder.mimeType });
    $("recorded").src = URL.createObjectURL(recording);
    $("recorded").hidden = false;
    $("audio").value = "";
    $("audio-name").textContent = "recording";
    $("record").textContent = "Record again";
    $("record-note").textContent = "";
  });
  recorder.start();
  $("record").textContent = "Stop recording";
  $("record-note").textContent = "Recording…";
});

function follow(job) {
  $("progress").hidden = false;
  $("message").textContent = "Waiting for a worker…";
  if (events) events.close();
  events = new EventSource("/v1/jobs/" + job.id + "/events");
  events.onmessage = (e) => {
    const j = JSON.parse(e.data);
    $("progress").value = j.progress;
    if (j.status === "running") $("message").textContent = "Working: " + (j.stage || "") + " " + Math.round(j.progress * 100) + " %";
    if (j.status === "queued") $("message").textContent = "Waiting for a worker…";
    if (j.status === "done") {
      events.close();
      $("progress").hidden = true;
      $("message").textContent = j.summary ? "Done: " + j.summary : "Done.";
      $("video-out").src = j.result;
      $("download").href = j.result;
      $("result").hidden = false;
      $("submit").disabled = false;
    } else if (j.status === "failed" || j.status === "cancelled") {
      events.close();
      showError(j.error ? j.error.message : "The job was cancelled.");
    }
  };
  events.addEventListener("gone", () => { events.close(); showError("The job is gone."); });
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  $("error").hidden = true;
  $("result").hidden = true;
  const m = mode();
  const data = new FormData();
  data.append("mode", m);
  const picture = m === "dub" ? "video" : "face";
  if (!$(picture).files.length) return showError(m === "dub" ? "Choose a video first." : "Choose a photo first.");
  data.append(picture, $(picture).files[0]);
  if ($("audio").files.length) data.append("audio", $("audio").files[0]);
  else if (recording) data.append("audio", recording, "recording." + (recording.type.includes("ogg") ? "ogg" : "webm"));
  else return showError("Choose a speech file or record one first.");
  for (const el of $("options-" + m).querySelectorAll("input, select")) {
    if (el.type === "checkbox") data.append(el.name, el.checked ? "true" : "false");
    else if (el.value !== "") data.append(el.name, el.value);
  }
  $("submit").disabled = true;
  $("message").textContent = "Uploading…";
  let response;
  try {
    response = await fetch("/v1/jobs", { method: "POST", body: data });
  } catch (err) {
    return showError("The server cannot be reached.");
  }
  const body = await response.json().catch(() => ({}));
  if (response.status !== 202) {
    return showError(body.error ? body.error.message : "The server refused the job (" + response.status + ").");
  }
  follow(body);
});

showMode();

// ------------------------------------------------------------------ live mode (WebSocket /v1/stream)
// The microphone is captured at 16 kHz (or resampled here), sent as float32 chunks of 512 samples (32 ms);
// each frame comes back as a 12-byte header (index, time, samples the server had) and a JPEG. The delay shown is
// the frame's arrival time minus the moment its audio was spoken, from the send times of the chunks.
let live = null;

function liveStop(note) {
  if (!live) return;
  const l = live;
  live = null;
  if (l.processor) l.processor.disconnect();
  if (l.source) l.source.disconnect();
  if (l.mic) l.mic.getTracks().forEach((t) => t.stop());
  if (l.context) l.context.close();
  if (l.ws.readyState === WebSocket.OPEN) l.ws.send(JSON.stringify({ type: "end" }));
  l.closing = true;
  $("live-start").textContent = "Go live";
  if (note) $("live-note").textContent = note;
}

function median(values) {
  if (!values.length) return NaN;
  const s = values.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

$("live-start").addEventListener("click", async () => {
  if (live) return liveStop("Stopped.");
  if (!$("face").files.length) { $("live-note").textContent = "Choose a photo first."; return; }
  if (!navigator.mediaDevices) { $("live-note").textContent = "The microphone needs https:// or localhost."; return; }
  let mic;
  try {
    mic = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  } catch (err) {
    $("live-note").textContent = "The microphone is not available: " + err.message;
    return;
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/v1/stream");
  ws.binaryType = "arraybuffer";
  const l = { ws, mic, sent: [], delays: [], first: null, start: null, frames: 0, fps: 25, url: null };
  live = l;
  $("live-start").textContent = "Stop";
  $("live-note").textContent = "Connecting…";
  const options = {};
  for (const el of $("options-generate").querySelectorAll("input, select")) {
    if (el.name === "emotion") continue;
    if (el.type === "checkbox") options[el.name] = el.checked;
    else if (el.value !== "") options[el.name] = el.value;
  }
  ws.onopen = async () => {
    ws.send(JSON.stringify({ type: "start", options, format: "f32le" }));
    ws.send(await $("face").files[0].arrayBuffer());
  };
  ws.onerror = () => { if (live === l) liveStop("The stream failed."); };
  ws.onclose = () => { if (live === l) liveStop("The server closed the stream."); };
  ws.onmessage = (e) => {
    if (typeof e.data === "string") {
      const m = JSON.parse(e.data);
      if (m.type === "ready") { l.fps = m.fps; startMic(l); $("live-note").textContent = "Live: speak now."; }
      else if (m.type === "error") liveStop(m.message);
      else if (m.type === "done") $("live-note").textContent = "Done: " + m.frames + " frames.";
      return;
    }
    const view = new DataView(e.data);
    const k = view.getUint32(0, true);
    const now = performance.now();
    const spoken = spokenAt(l, (k / l.fps) * 16000);
    if (l.first === null) l.first = now - l.start;
    if (spoken !== null) l.delays.push(now - spoken);
    if (l.delays.length > 100) l.delays.shift();
    l.frames += 1;
    const url = URL.createObjectURL(new Blob([e.data.slice(12)], { type: "image/jpeg" }));
    $("live-frame").onload = () => URL.revokeObjectURL(url);
    $("live-frame").src = url;
    $("live-view").hidden = false;
    if (l.frames % 5 === 0) {
      $("live-stats").textContent = "frame " + k + " · first frame " + Math.round(l.first) + " ms after the first chunk"
        + " · audio to mouth " + Math.round(median(l.delays)) + " ms (median of the last " + l.delays.length + ")";
    }
  };
});

// when the sample at `index` was spoken: the send time of the chunk holding it, minus the audio after it
function spokenAt(l, index) {
  for (const [end, time] of l.sent) if (end >= index) return time - ((end - index) / 16000) * 1000;
  return null;
}

function startMic(l) {
  const context = new AudioContext({ sampleRate: 16000 });
  const source = context.createMediaStreamSource(l.mic);
  const processor = context.createScriptProcessor(512, 1, 1);
  const ratio = context.sampleRate / 16000;
  let total = 0;
  processor.onaudioprocess = (e) => {
    if (live !== l || l.ws.readyState !== WebSocket.OPEN) return;
    let x = e.inputBuffer.getChannelData(0);
    if (ratio !== 1) { // the browser kept its own rate: linear resampling to 16 kHz
      const n = Math.floor(x.length / ratio);
      const y = new Float32Array(n);
      for (let i = 0; i < n; i++) y[i] = x[Math.min(x.length - 1, Math.round(i * ratio))];
      x = y;
    }
    const now = performance.now();
    if (l.start === null) l.start = now;
    total += x.length;
    l.sent.push([total, now]);
    if (l.sent.length > 400) l.sent.shift();
    l.ws.send(new Float32Array(x).buffer);
  };
  source.connect(processor);
  processor.connect(context.destination); // a ScriptProcessor only runs while connected; it outputs silence
  Object.assign(l, { context, source, processor });
}
