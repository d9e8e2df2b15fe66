// The itemrec page: live view, current item and last scans (server-sent events), enrolment,
// the item list and the threshold. Plain JavaScript against the /v1 API; no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "itemrec_token";
const ITEMS_SHOWN = 200; // rows rendered at once; the filter finds the rest
const pendingPhotos = [];
let allItems = [];

// -- API -------------------------------------------------------------------------------------
function rememberToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
  // <img> and EventSource cannot send a header: the server also reads this cookie.
  document.cookie = `${TOKEN_KEY}=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
}

async function api(path, options = {}) {
  const token = localStorage.getItem(TOKEN_KEY);
  const headers = Object.assign({}, options.headers || {});
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this server needs its token");
  }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body && body.error ? body.error : response.statusText);
  return body;
}

function show(element, text, ok) {
  element.textContent = text;
  element.className = ok ? "ok" : "error";
}

// -- current item and scans -----------------------------------------------------------------
function showCurrent(scan) {
  const card = $("current");
  card.classList.toggle("empty", !scan);
  $("current-name").textContent = scan ? scan.name : "nothing scanned yet";
  $("current-code").textContent = scan ? scan.code : "";
  $("current-score").textContent = scan ? `score ${scan.score.toFixed(2)}` : "";
}

const shownScans = new Set(); // "time code" of each scan in the list

function addScan(scan, atEnd) {
  const key = `${scan.time} ${scan.code}`;
  if (shownScans.has(key)) return;
  shownScans.add(key);
  const item = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date(scan.time * 1000).toLocaleTimeString();
  item.append(time, `${scan.code} · ${scan.name} (${scan.score.toFixed(2)})`);
  const list = $("scans");
  if (atEnd) list.append(item);
  else list.prepend(item);
  item.dataset.key = key;
  while (list.children.length > 20) {
    shownScans.delete(list.lastChild.dataset.key);
    list.lastChild.remove();
  }
}

// Subscribes before the page reads /v1/current and /v1/scans, and holds the events back until
// those are shown: a scan published between the two reads is then neither lost (as it was when
// the page subscribed last: a fast camera confirmed item A in that gap and the page never showed
// it) nor shown twice (the list skips a scan it already has).
function listenToEvents() {
  const source = new EventSource("/v1/events");
  let held = [];
  const on = (kind, handler) => source.addEventListener(kind, (message) => {
    if (held) held.push(() => handler(message));
    else handler(message);
  });
  on("scan", (message) => {
    const scan = JSON.parse(message.data);
    showCurrent(scan);
    addScan(scan, false);
  });
  on("camera_lost", () => {
    showCurrent(null);
    refreshHealth();
  });
  on("ready", () => refreshHealth());
  // Subscribed once the stream answers; an error (no token yet) must not hold the page either.
  const subscribed = new Promise((resolve) => {
    source.addEventListener("open", resolve, { once: true });
    source.addEventListener("error", resolve, { once: true });
  });
  const release = () => {
    const waiting = held;
    held = null;
    for (const handle of waiting) handle();
  };
  return { subscribed, release };
}

// -- health and live view -------------------------------------------------------------------
async function refreshHealth() {
  try {
    const health = await api("/healthz");
    const camera = health.camera;
    const parts = [`${health.gallery.items} items`];
    if (camera) parts.push(`camera ${camera.state}`, `${camera.fps.toFixed(1)} frames/s`);
    if (camera && camera.error) parts.push(camera.error);
    $("health").textContent = parts.join(" · ");
    $("no-camera").hidden = Boolean(camera);
    $("live").hidden = !camera;
    return health;
  } catch (error) {
    $("health").textContent = `server unreachable: ${error.message}`;
    return null;
  }
}

function startLiveView() {
  const live = $("live");
  live.src = "/v1/stream.mjpg";
  // A dropped stream (server restart, camera reopened) comes back a moment later.
  live.onerror = () => setTimeout(() => { live.src = `/v1/stream.mjpg?t=${Date.now()}`; }, 2000);
}

// -- items and threshold --------------------------------------------------------------------
function renderItems() {
  const filter = $("item-filter").value.trim().toLowerCase();
  const matching = allItems.filter((item) =>
    !filter || item.code.toLowerCase().includes(filter) || item.name.toLowerCase().includes(filter));
  const body = $("items");
  body.replaceChildren(...matching.slice(0, ITEMS_SHOWN).map((item) => {
    const row = document.createElement("tr");
    row.dataset.code = item.code;
    for (const text of [item.code, item.name, item.representatives]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    const remove = document.createElement("button");
    remove.textContent = "Delete";
    remove.addEventListener("click", () => deleteItem(item.code));
    const cell = document.createElement("td");
    cell.append(remove);
    row.append(cell);
    return row;
  }));
  $("item-count").textContent = `(${allItems.length})`;
  const hidden = matching.length - ITEMS_SHOWN;
  $("items-more").textContent = hidden > 0 ? `${hidden} more: filter to find them` : "";
}

async function loadItems() {
  const listing = await api("/v1/items");
  allItems = listing.items;
  renderItems();
  $("threshold").value = listing.threshold === null ? "" : listing.threshold;
}

async function deleteItem(code) {
  if (!confirm(`Delete ${code} and all its photos?`)) return;
  try {
    await api(`/v1/items/${encodeURIComponent(code)}`, { method: "DELETE" });
    await loadItems();
    refreshHealth();
  } catch (error) {
    alert(error.message);
  }
}

async function saveThreshold(event) {
  event.preventDefault();
  const text = $("threshold").value.trim();
  try {
    const body = JSON.stringify({ threshold: text === "" ? null : Number(text) });
    const result = await api("/v1/threshold", {
      method: "PUT", body, headers: { "Content-Type": "application/json" },
    });
    show($("threshold-message"), `saved: ${result.threshold === null ? "none" : result.threshold}`, true);
  } catch (error) {
    show($("threshold-message"), error.message, false);
  }
}

// -- enrolment ------------------------------------------------------------------------------
function renderPhotos() {
  $("photo-list").replaceChildren(...pendingPhotos.map((file, index) => {
    const item = document.createElement("li");
    const image = document.createElement("img");
    image.src = URL.createObjectURL(file);
    image.alt = file.name;
    image.onload = () => URL.revokeObjectURL(image.src);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.title = `Remove ${file.name}`;
    remove.addEventListener("click", () => { pendingPhotos.splice(index, 1); renderPhotos(); });
    item.append(image, remove);
    return item;
  }));
  $("enroll-submit").textContent = `Enrol with ${pendingPhotos.length || "these"} photo${pendingPhotos.length === 1 ? "" : "s"}`;
}

async function enroll(fromCamera) {
  const code = $("enroll-code").value.trim();
  const message = $("enroll-message");
  if (!code) return show(message, "give the item's code", false);
  if (!fromCamera && pendingPhotos.length === 0) return show(message, "add at least one photo", false);
  const form = new FormData();
  form.append("code", code);
  form.append("name", $("enroll-name").value.trim());
  if (fromCamera) form.append("from_camera", "true");
  for (const file of fromCamera ? [] : pendingPhotos) form.append("photos", file, file.name);
  show(message, fromCamera ? "taking photos…" : "enrolling…", true);
  try {
    const result = await api("/v1/items", { method: "POST", body: form });
    show(message, `${result.code}: ${result.added} photos added, ${result.representatives} in all`, true);
    pendingPhotos.length = 0;
    renderPhotos();
    $("enroll-code").value = "";
    $("enroll-name").value = "";
    await loadItems();
    refreshHealth();
  } catch (error) {
    show(message, error.message, false);
  }
}

// -- start ----------------------------------------------------------------------------------
async function start() {
  const health = await refreshHealth();
  const events = listenToEvents();
  await events.subscribed;
  try {
    const [current, scans] = await Promise.all([api("/v1/current"), api("/v1/scans")]);
    showCurrent(current);
    for (const scan of scans) addScan(scan, true);
    await loadItems();
  } catch (error) {
    $("health").textContent = error.message;
    return;
  } finally {
    events.release();
  }
  if (health && health.camera) {
    // Started after the page's load event, which an endless MJPEG stream would hold back.
    if (document.readyState === "complete") startLiveView();
    else window.addEventListener("load", startLiveView);
  }
  setInterval(refreshHealth, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    rememberToken($("token").value.trim());
    location.reload();
  });
  $("enroll-photos").addEventListener("change", (event) => {
    pendingPhotos.push(...event.target.files);
    event.target.value = "";
    renderPhotos();
  });
  $("enroll-form").addEventListener("submit", (event) => { event.preventDefault(); enroll(false); });
  $("enroll-camera").addEventListener("click", () => enroll(true));
  $("item-filter").addEventListener("input", renderItems);
  $("threshold-form").addEventListener("submit", saveThreshold);
  start();
});
