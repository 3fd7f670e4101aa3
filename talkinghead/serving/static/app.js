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
