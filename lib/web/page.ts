/**
 * The status page: one HTML document with its script and style inline, so that it is served
 * the same way by `laas ui` and by the cloud's function. The script asks the API every two
 * seconds (a Lambda function URL cannot hold a server-sent event stream open, short polling
 * works on both) and writes every value as text, never as markup: a booking's purpose or user
 * comes from the dashboard. The pod drawing is SVG the server generated with every value escaped
 * (lib/pod/drawing.ts); it is parsed as SVG, not as HTML.
 */

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 0; color: #1d2733; background: #f6f8fa; }
header { background: #1d3b57; color: #fff; padding: 10px 20px; display: flex; gap: 20px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
#updated { opacity: .85; }
#status.down { color: #ffb3b3; font-weight: bold; }
main { padding: 10px 20px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin: 12px 0; padding: 8px 14px; }
h2 { font-size: 15px; margin: 6px 0 10px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { font-weight: 600; color: #57606a; }
tr.booking { cursor: pointer; }
tr.booking:hover, tr.booking.open { background: #eef5ff; }
.state-failed, .outcome-failed { color: #b42318; font-weight: 600; }
.state-ready, .outcome-succeeded { color: #1a7f37; }
.state-quarantined { color: #b42318; }
.outcome-running { color: #0550ae; font-weight: 600; }
.outcome-caught { color: #9a6700; }
.cause { color: #57606a; font-size: 12px; white-space: pre-wrap; }
#pod svg { max-width: 100%; height: auto; }
.muted { color: #57606a; }
`;

const SCRIPT = `
"use strict";
const byId = (id) => document.getElementById(id);
const zoned = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
});
function when(iso) { return iso ? zoned.format(new Date(iso)) : ""; }
function seconds(from, to) {
  if (!from) return "";
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}
function cell(row, value, className) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "" : String(value);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}
function fill(tbody, items, build) {
  const rows = items.map(build);
  tbody.replaceChildren(...rows);
}
let openBooking = null;
let lastOverview = null;

async function getJson(path) {
  const answer = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (!answer.ok) throw new Error(path + ": " + answer.status);
  return answer.json();
}

async function refresh() {
  try {
    const overview = await getJson("api/overview");
    lastOverview = overview;
    byId("status").textContent = "live";
    byId("status").className = "";
    byId("updated").textContent = "updated " + when(overview.generatedAt);
    fill(byId("hosts"), overview.hosts, (host) => {
      const row = document.createElement("tr");
      row.dataset.host = host.name;
      cell(row, host.name);
      cell(row, host.state, "state-" + host.state);
      cell(row, host.bookingId);
      cell(row, host.reason);
      return row;
    });
    fill(byId("bookings"), overview.bookings, (booking) => {
      const row = document.createElement("tr");
      row.className = "booking" + (booking.id === openBooking ? " open" : "");
      row.dataset.booking = booking.id;
      cell(row, booking.id);
      cell(row, booking.hostName);
      cell(row, booking.state, "state-" + booking.state);
      cell(row, booking.progress);
      cell(row, when(booking.start));
      cell(row, when(booking.end));
      cell(row, booking.user);
      cell(row, booking.installer ?? "none");
      row.addEventListener("click", () => open(booking.id));
      return row;
    });
    byId("booking-count").textContent = String(overview.bookings.length);
    byId("host-count").textContent = String(overview.hosts.length);
    if (openBooking !== null) await showBooking(openBooking, false);
  } catch (error) {
    byId("status").textContent = "cannot reach LaaS: " + error.message;
    byId("status").className = "down";
  }
}

function open(id) {
  openBooking = id;
  location.hash = "booking=" + encodeURIComponent(id);
  for (const row of document.querySelectorAll("tr.booking")) {
    row.classList.toggle("open", row.dataset.booking === id);
  }
  showBooking(id, true);
}

let podKey = null;
async function showBooking(id, fresh) {
  const detail = await getJson("api/bookings/" + encodeURIComponent(id));
  if (openBooking !== id) return;
  const b = detail.booking;
  byId("detail").hidden = false;
  byId("detail-title").textContent = "Booking " + b.id + " on " + b.hostName;
  const facts = [
    ["state", b.state], ["stage", b.progress], ["start", when(b.start)], ["end", when(b.end)],
    ["user", b.user], ["installer", b.installer ?? "none"], ["scenario", b.scenario],
    ["purpose", b.purpose], ["waiting for", b.waitingFor ? b.waitingFor + " since " + when(b.waitingSince) : null],
    ["hand-over", b.handover], ["VPN user", b.vpnUser], ["failure", b.failure],
  ].filter(([, value]) => value !== null && value !== undefined && value !== "");
  fill(byId("facts"), facts, ([name, value]) => {
    const row = document.createElement("tr");
    cell(row, name);
    cell(row, value, name === "failure" ? "state-failed" : "");
    return row;
  });
  const timelines = byId("timelines");
  timelines.replaceChildren(...detail.executions.map(timelineOf));
  if (detail.executions.length === 0) {
    const none = document.createElement("p");
    none.className = "muted";
    none.textContent = "No execution history yet.";
    timelines.appendChild(none);
  }
  const key = id + "|" + b.state + "|" + b.progress;
  if (fresh || key !== podKey) {
    podKey = key;
    await showPod(id);
  }
}

function timelineOf(execution) {
  const box = document.createElement("div");
  box.className = "execution";
  box.dataset.execution = execution.execution;
  const title = document.createElement("h3");
  title.textContent = execution.phase + " " + execution.generation + ": " + execution.status +
    " · started " + when(execution.startedAt) +
    (execution.endedAt ? " · ended " + when(execution.endedAt) + " (" + seconds(execution.startedAt, execution.endedAt) + ")" : "") +
    (execution.resumes.length ? " · resumed " + execution.resumes.length + "×" : "");
  box.appendChild(title);
  if (execution.error) {
    const cause = document.createElement("p");
    cause.className = "cause";
    cause.textContent = execution.error + ": " + (execution.cause ?? "");
    box.appendChild(cause);
  }
  const table = document.createElement("table");
  table.className = "timeline";
  const head = document.createElement("tr");
  for (const name of ["step", "entered", "left", "took", "attempts", "heartbeats", "outcome"]) {
    const th = document.createElement("th");
    th.textContent = name;
    head.appendChild(th);
  }
  table.appendChild(head);
  for (const step of execution.steps) {
    const row = document.createElement("tr");
    row.className = "step";
    row.dataset.state = step.state;
    row.dataset.outcome = step.outcome;
    cell(row, step.state + (step.waitingSince ? " (waits)" : ""));
    cell(row, when(step.enteredAt));
    cell(row, when(step.exitedAt));
    cell(row, seconds(step.enteredAt, step.exitedAt));
    cell(row, step.attempts);
    cell(row, step.heartbeats ? step.heartbeats + " (last " + when(step.lastHeartbeatAt) + ")" : "");
    const outcome = cell(row, step.outcome, "outcome-" + step.outcome);
    if (step.error) {
      const cause = document.createElement("div");
      cause.className = "cause";
      cause.textContent = step.error + (step.cause ? ": " + step.cause : "");
      outcome.appendChild(cause);
    }
    table.appendChild(row);
  }
  box.appendChild(table);
  return box;
}

async function showPod(id) {
  const answer = await fetch("api/bookings/" + encodeURIComponent(id) + "/pod.svg", { cache: "no-store" });
  const pod = byId("pod");
  if (!answer.ok) {
    pod.textContent = "No drawing: " + (await answer.text());
    return;
  }
  const parsed = new DOMParser().parseFromString(await answer.text(), "image/svg+xml");
  const svg = parsed.documentElement;
  if (svg.nodeName !== "svg") { pod.textContent = "No drawing."; return; }
  pod.replaceChildren(document.importNode(svg, true));
}

const fromHash = /^#booking=(.+)$/.exec(location.hash);
if (fromHash) openBooking = decodeURIComponent(fromHash[1]);
refresh().then(() => { if (openBooking !== null) open(openBooking); });
setInterval(refresh, 2000);
`;

export function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LaaS — lab status</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>LaaS — lab status</h1><span id="updated">loading…</span><span id="status"></span></header>
<main>
<section><h2>Hosts (<span id="host-count">0</span>)</h2>
<table><thead><tr><th>host</th><th>state</th><th>booking</th><th>reason</th></tr></thead>
<tbody id="hosts"></tbody></table></section>
<section><h2>Bookings (<span id="booking-count">0</span>)</h2>
<table><thead><tr><th>booking</th><th>host</th><th>state</th><th>stage</th><th>start</th><th>end</th><th>user</th><th>installer</th></tr></thead>
<tbody id="bookings"></tbody></table></section>
<section id="detail" hidden><h2 id="detail-title"></h2>
<table><tbody id="facts"></tbody></table>
<h2>Pod</h2><div id="pod"></div>
<h2>Timeline</h2><div id="timelines"></div></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
