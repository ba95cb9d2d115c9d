// The callvault player: lists the recordings the signed-in person may play
// and plays them with the browser's own <audio>/<video>, whose Range
// requests read only the frames that cover a seek. The session is an
// HttpOnly cookie this page never sees; nothing is kept in storage.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;
let nextCursor = null;
let media = null;

function show(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
}

// Each segment encoded; "." and ".." too, so that no URL normalisation
// turns an id into another path.
function segment(s) {
  const e = encodeURIComponent(s);
  return e === "." ? "%2E" : e === ".." ? "%2E%2E" : e;
}

function recordingPath(type, id) {
  return "recordings/" + segment(type) + "/" + id.split("/").map(segment).join("/");
}

function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u += 1; }
  return (u === 0 ? n : n.toFixed(1)) + " " + units[u];
}

function when(rfc3339) {
  return (rfc3339 || "").replace("T", " ").replace("Z", " UTC");
}

function clock(seconds) {
  if (!isFinite(seconds)) return "0:00";
  const s = Math.floor(seconds);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

// The JSON an error response carries, as the text to show.
async function refusal(response) {
  try {
    const body = await response.json();
    return body.message || body.error || ("HTTP " + response.status);
  } catch (_) {
    return "The player could not reach the recording (HTTP " + response.status + ").";
  }
}

// One byte of a recording: whether it plays now, and the refusal when not.
function probe(path) {
  return fetch(path, { credentials: "same-origin", headers: { Range: "bytes=0-0" } });
}

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) {
    signedOut();
    throw new Error("signed out");
  }
  return response;
}

function signedOut() {
  $("app").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  $("signin").hidden = false;
}

async function start() {
  const response = await fetch("api/me", { credentials: "same-origin" });
  if (response.status === 401) { signedOut(); return; }
  if (!response.ok) { show(await refusal(response)); return; }
  me = await response.json();
  $("who").textContent = "Signed in as " + (me.username || me.email || me.subject) +
    (me.groups.length ? " (" + me.groups.join(", ") + ")" : "");
  $("signout").hidden = false;
  $("app").hidden = false;
  const select = $("type");
  select.replaceChildren();
  for (const t of me.types) {
    const option = document.createElement("option");
    option.value = t.recording_type;
    option.textContent = t.recording_type;
    select.append(option);
  }
  if (!me.types.length) {
    show("You are not permitted to play any recordings yet: ask the administrator of the player for access.");
    $("search").hidden = true;
    $("list").hidden = true;
  } else {
    await search(false);
  }
  await route();
}

async function search(more) {
  const params = new URLSearchParams({ type: $("type").value, limit: "25" });
  if ($("from").value) params.set("from", $("from").value);
  if ($("to").value) params.set("to", $("to").value);
  if (more && nextCursor) params.set("after", nextCursor);
  const response = await api("api/recordings?" + params);
  if (!response.ok) { show(await refusal(response)); return; }
  const page = await response.json();
  const body = $("list").tBodies[0];
  if (!more) body.replaceChildren();
  for (const r of page.recordings) {
    const row = body.insertRow();
    row.insertCell().textContent = r.recording_id;
    row.insertCell().textContent = when(r.encrypted_at);
    row.insertCell().textContent = size(r.size);
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Play";
    button.setAttribute("aria-label", "Play " + r.recording_id);
    button.addEventListener("click", () => {
      const link = "play=" + encodeURIComponent(r.recording_type + "/" + r.recording_id);
      // The same recording again (after an error): the hash does not change.
      if (location.hash === "#" + link) route().catch(() => {}); else location.hash = link;
    });
    row.insertCell().append(button);
  }
  nextCursor = page.next;
  $("more").hidden = !nextCursor;
  $("empty").hidden = body.rows.length > 0;
}

// #play=<type>/<id> opens a recording (a link a colleague can share).
async function route() {
  const hash = location.hash.slice(1);
  if (!hash.startsWith("play=")) return;
  let name;
  try { name = decodeURIComponent(hash.slice(5)); } catch (_) { show("That link names no recording."); return; }
  const slash = name.indexOf("/");
  if (slash < 1) { show("That link names no recording."); return; }
  await play(name.slice(0, slash), name.slice(slash + 1));
}

function fact(list, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

async function play(type, id) {
  show("");
  const path = recordingPath(type, id);
  for (const m of [$("audio"), $("video")]) { m.pause(); m.removeAttribute("src"); m.load(); }
  $("player").hidden = true;
  const info = await api(path + "/info");
  if (!info.ok) { show(await refusal(info)); return; }
  const facts = await info.json();
  // A first byte, to learn whether it plays (the key's state, the
  // person's rights) and to show why not; the media element's own
  // requests follow from the cache.
  const first = await probe(path);
  if (first.status === 401) { signedOut(); show("Your session has ended: sign in again."); return; }
  // 416: an empty recording (no byte 0); it plays nothing, but it plays.
  if (first.status !== 206 && first.status !== 416) { show(await refusal(first)); return; }
  await first.arrayBuffer();
  const isVideo = (facts.content_type || "").startsWith("video/");
  media = isVideo ? $("video") : $("audio");
  $("audio").hidden = isVideo;
  $("video").hidden = !isVideo;
  $("now-playing").textContent = id;
  const list = $("facts");
  list.replaceChildren();
  fact(list, "Type", facts.recording_type);
  fact(list, "Size", size(facts.size));
  fact(list, "Duration", "…");
  fact(list, "Encrypted at", when(facts.encrypted_at));
  fact(list, "Key", facts.wrapping_key_arns.join(", "));
  if (facts.legal_hold) fact(list, "Legal hold", facts.legal_hold.reason + " (" + facts.legal_hold.by + ")");
  $("player").hidden = false;
  media.src = path;
  media.addEventListener("loadedmetadata", () => {
    list.querySelectorAll("dd")[2].textContent = clock(media.duration);
    sync();
  }, { once: true });
  media.focus();
  // Pressing Play in the list plays; a browser that wants another gesture
  // leaves the controls to the person.
  media.play().catch(() => {});
}

function sync() {
  if (!media || !isFinite(media.duration) || media.duration === 0) return;
  const seek = $("seek");
  seek.value = String(Math.round((media.currentTime / media.duration) * 1000));
  const text = clock(media.currentTime) + " / " + clock(media.duration);
  seek.setAttribute("aria-valuetext", text);
  $("position").textContent = text;
}

// When the media element cannot go on (a key disabled since, a session
// ended), ask once more for a byte to say why.
async function failed() {
  if (!media || !media.getAttribute("src")) return;
  const response = await probe(media.getAttribute("src"));
  if (response.status === 401) { signedOut(); show("Your session has ended: sign in again."); return; }
  if (response.status !== 206 && response.status !== 200) show(await refusal(response));
  else show("The recording stopped playing; press play to try again.");
}

document.addEventListener("DOMContentLoaded", () => {
  $("search").addEventListener("submit", (e) => { e.preventDefault(); search(false).catch(() => {}); });
  $("more").addEventListener("click", () => search(true).catch(() => {}));
  $("seek").addEventListener("input", () => {
    if (media && isFinite(media.duration)) media.currentTime = (Number($("seek").value) / 1000) * media.duration;
  });
  for (const m of [$("audio"), $("video")]) {
    m.addEventListener("timeupdate", sync);
    m.addEventListener("error", () => { failed().catch(() => {}); });
  }
  window.addEventListener("hashchange", () => { route().catch(() => {}); });
  start().catch((e) => { if (e.message !== "signed out") show("The player could not start: " + e.message); });
});
