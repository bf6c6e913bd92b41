public import FleetCore
public import FleetConfig
public import FleetUpstream
public import FleetSupervision
public import FleetRouting
/// The dashboard that `GET /` and `GET /ui` serve: one self-contained page (HTML, CSS and JavaScript, no build
/// step, nothing fetched from elsewhere, so it works offline) that polls `GET /status` once a second and renders
/// every model and instance. It reads the same JSON as `fleet status --json`; to show something new, add it to
/// `FleetStatus` first, then here.
///
/// Rules the script keeps: every value from the controller reaches the DOM through `textContent` or
/// `setAttribute`, never `innerHTML`; one request in flight at a time (the next poll is scheduled when the last
/// one ends, and a hung one is aborted after 5 s); URLs are relative (`status`, `control/restart/…`), so the page
/// also works behind a proxy that mounts fleet under a path. Elements carry `data-model`, `data-instance` and
/// `data-state` for tests and scripts.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fleet</title>
<link rel="icon" href="data:,">
<style>
:root {
  --bg: #f4f6f9; --panel: #ffffff; --text: #1b2230; --muted: #5b6577; --line: #e3e7ee; --head: #131a27;
  --accent: #2f6fde; --bar: #dde3ec;
  --ready: #18794e; --ready-bg: #ddf3e6; --starting: #9a5b00; --starting-bg: #fdf0d5;
  --unhealthy: #c2410c; --unhealthy-bg: #ffe6d5; --failed: #b91c1c; --failed-bg: #fde2e2;
  --stopping: #6d3fc0; --stopping-bg: #ece5fb; --idle: #5b6577; --idle-bg: #e9ecf1;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f141c; --panel: #171e2a; --text: #e4e8ef; --muted: #98a2b3; --line: #273142; --head: #0a0e14;
    --bar: #2b3546;
    --ready: #5fd39a; --ready-bg: #123524; --starting: #f2c66d; --starting-bg: #3a2c0e;
    --unhealthy: #ff9f6e; --unhealthy-bg: #40200f; --failed: #ff8a8a; --failed-bg: #421616;
    --stopping: #c4a8ff; --stopping-bg: #2b2145; --idle: #98a2b3; --idle-bg: #252d3a;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { background: var(--head); color: #fff; padding: 14px 24px; display: flex; align-items: baseline;
  gap: 8px 24px; flex-wrap: wrap; }
header h1 { margin: 0; font-size: 18px; letter-spacing: .02em; }
#controller { display: flex; gap: 4px 20px; flex-wrap: wrap; margin: 0; font-size: 13px; color: #b9c3d3; }
#controller div { display: flex; gap: 6px; }
#controller dt { color: #8793a8; }
#controller dd { margin: 0; color: #fff; font-variant-numeric: tabular-nums; }
#updated { margin-left: auto; font-size: 12px; color: #8793a8; }
main { max-width: 1480px; margin: 0 auto; padding: 20px 24px 40px; }
#connection { margin: 0 0 16px; padding: 10px 14px; border-radius: 6px; border: 1px solid var(--failed);
  background: var(--failed-bg); color: var(--failed); font-weight: 600; }
main.stale #models { opacity: .55; }
#empty { color: var(--muted); }
section.model { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; margin: 0 0 20px;
  overflow-x: auto; }
.model-head { display: flex; align-items: center; gap: 6px 16px; flex-wrap: wrap; padding: 12px 16px;
  border-bottom: 1px solid var(--line); }
.model-head h2 { margin: 0; font-size: 16px; }
.meta { display: flex; gap: 4px 16px; flex-wrap: wrap; margin: 0; color: var(--muted); font-size: 13px; }
.meta div { display: flex; gap: 5px; }
.meta dd { margin: 0; color: var(--text); }
.actions { margin-left: auto; display: flex; align-items: center; gap: 12px; }
.result { font-size: 13px; color: var(--muted); max-width: 560px; }
.result.error { color: var(--failed); }
button { font: inherit; font-size: 13px; font-weight: 600; padding: 5px 14px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--accent); background: var(--accent); color: #fff; }
button:hover { filter: brightness(1.08); }
button:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
button:disabled { cursor: progress; opacity: .6; filter: none; }
/* Fixed layout with the same widths in every model's table, so the columns line up down the page. */
table { width: 100%; min-width: 1040px; table-layout: fixed; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 8px 10px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap;
  vertical-align: middle; }
tbody tr:last-child > * { border-bottom: 0; }
thead th { font-size: 11.5px; font-weight: 600; letter-spacing: .05em; text-transform: uppercase; color: var(--muted); }
tbody th { font-weight: 600; overflow: hidden; text-overflow: ellipsis; }
.num { text-align: right; }
.dim { color: var(--muted); }
.tag { margin-left: 6px; padding: 0 6px; border-radius: 4px; font-size: 11px; background: var(--idle-bg);
  color: var(--idle); }
.badge { display: inline-block; min-width: 74px; padding: 1px 9px; border-radius: 999px; font-size: 12px;
  font-weight: 600; text-align: center; color: var(--idle); background: var(--idle-bg); }
.badge[data-state="ready"] { color: var(--ready); background: var(--ready-bg); }
.badge[data-state="starting"] { color: var(--starting); background: var(--starting-bg); }
.badge[data-state="unhealthy"] { color: var(--unhealthy); background: var(--unhealthy-bg); }
.badge[data-state="failed"] { color: var(--failed); background: var(--failed-bg); }
.badge[data-state="stopping"] { color: var(--stopping); background: var(--stopping-bg); }
.since { margin-left: 8px; font-size: 12px; color: var(--muted); }
.load { display: inline-flex; align-items: center; gap: 8px; }
.bar { display: inline-block; width: 56px; height: 6px; border-radius: 3px; background: var(--bar); overflow: hidden; }
.bar span { display: block; height: 100%; width: 0; background: var(--accent); }
.bar.full span { background: var(--unhealthy); }
td.last-error { white-space: normal; }
.clamp { min-width: 160px; max-width: 400px; color: var(--failed); font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace;
  white-space: pre-wrap; display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
</style>
</head>
<body>
<header>
  <h1>fleet</h1>
  <dl id="controller" aria-label="Controller">
    <div><dt>version</dt><dd id="version">–</dd></div>
    <div><dt>url</dt><dd id="url">–</dd></div>
    <div><dt>up</dt><dd id="uptime">–</dd></div>
    <div><dt>llama-server</dt><dd id="llama">–</dd></div>
    <div><dt>ready</dt><dd id="ready">–</dd></div>
    <div id="memory-item" hidden><dt>memory</dt><dd id="memory">–</dd></div>
  </dl>
  <span id="updated" aria-live="off">connecting…</span>
</header>
<main id="main">
  <p id="connection" role="alert" hidden></p>
  <p id="empty" hidden>This fleet has no models.</p>
  <div id="models"></div>
</main>
<script>
"use strict";
const POLL_MS = 1000;
const FETCH_TIMEOUT_MS = 5000;
const sections = new Map();   // model name → the section's elements and its rows
let sectionCount = 0;         // for unique element ids
const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  const [big, bigUnit, small, smallUnit] = s < 3600 ? [Math.floor(s / 60), "m", s % 60, "s"]
    : s < 86400 ? [Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "m"]
    : [Math.floor(s / 86400), "d", Math.floor((s % 86400) / 3600), "h"];
  return big + bigUnit + (small ? " " + small + smallUnit : "");
}

function since(iso) {
  return iso ? duration((Date.now() - Date.parse(iso)) / 1000) : "";
}

function gib(bytes) {
  return (bytes / 1073741824).toFixed(1) + " GiB";
}

function milliseconds(value) {
  if (value === undefined || value === null) return "–";
  return (value < 10 ? value.toFixed(1) : String(Math.round(value))) + " ms";
}

class Problem extends Error {}

function problemFor(response, what) {
  if (response.status === 401) {
    return new Problem(what + ": the controller asks for credentials (HTTP 401). Reload the page to sign in.");
  }
  if (response.status === 403) return new Problem(what + ": not allowed (HTTP 403).");
  return new Problem(what + ": the controller answered HTTP " + response.status + ".");
}

async function poll() {
  try {
    let response;
    try {
      response = await fetch("status", {
        cache: "no-store", headers: { Accept: "application/json" }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS)
      });
    } catch (error) {
      const why = error.name === "TimeoutError" ? "no answer within " + FETCH_TIMEOUT_MS / 1000 + " s" : error.message;
      throw new Problem("Cannot reach the controller (" + why + ").");
    }
    if (!response.ok) throw problemFor(response, "Cannot read the status");
    render(await response.json());
    showConnection(null);
  } catch (error) {
    const reason = error instanceof Problem ? error.message : "Cannot show the status (" + error.message + ").";
    showConnection(reason + " Retrying every second…");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function showConnection(message) {
  const banner = $("connection");
  banner.hidden = message === null;
  if (message !== null) setText(banner, message);
  $("main").classList.toggle("stale", message !== null && sections.size > 0);
  if (message === null) setText($("updated"), "updated " + new Date().toLocaleTimeString());
}

function render(status) {
  const controller = status.controller;
  const instances = status.instances || [];
  setText($("version"), controller.version);
  setText($("url"), controller.url);
  setText($("uptime"), since(controller.startedAt));
  const llama = controller.llamaServerVersion;
  setText($("llama"), llama ? (llama.build > 0 ? "b" + llama.build : "build unknown") + " (" + llama.commit + ")" : "version unknown");
  const ready = instances.filter((instance) => instance.state === "ready").length;
  setText($("ready"), ready + " / " + instances.length + " instances");
  $("memory-item").hidden = !status.memory;
  if (status.memory) setText($("memory"), gib(status.memory.inUse) + " of " + gib(status.memory.budget));

  const models = status.models.slice();
  for (const instance of instances) {
    if (!models.some((model) => model.name === instance.model)) models.push({ name: instance.model, replicas: 0 });
  }
  const roots = [];
  for (const model of models) {
    const section = sections.get(model.name) || createSection(model.name);
    updateSection(section, model, instances.filter((instance) => instance.model === model.name));
    roots.push(section.root);
  }
  placeInOrder($("models"), roots);
  for (const [name, section] of sections) {
    if (!models.some((model) => model.name === name)) {
      section.root.remove();
      sections.delete(name);
    }
  }
  $("empty").hidden = models.length > 0;
}

// Makes `nodes` the first children of `parent`, in order, moving only those out of place: a node that moves loses
// keyboard focus, so nothing moves on a poll that changed nothing.
function placeInOrder(parent, nodes) {
  let expected = parent.firstChild;
  for (const node of nodes) {
    if (node !== expected) parent.insertBefore(node, expected);
    expected = node.nextSibling;
  }
}

// Label, cell class, width, what it means (the header's tooltip). Last error takes the rest of the width.
const COLUMNS = [
  ["Instance", "", "17%", "model/replica; an unmanaged endpoint shows its URL"],
  ["State", "", "140px", "and for how long"],
  ["Port", "num", "68px", ""],
  ["PID", "num", "72px", ""],
  ["Load", "", "124px", "requests in flight / slots"],
  ["Served", "num", "76px", "requests answered in full"],
  ["Errors", "num", "70px", "requests that failed on this instance"],
  ["Latency", "num", "88px", "duration of the last successful request"],
  ["First byte", "num", "98px", "time to the first byte of the last successful request"],
  ["Tokens/s", "num", "84px", "generated tokens per second of the last answer (llama-server's own count)"],
  ["Restarts", "num", "86px", "restarts after crashes since the controller started"],
  ["Last error", "", "", "the last crash or health problem, kept after recovery"]
];

function createSection(name) {
  const id = "model-" + ++sectionCount;
  const root = element("section", { class: "model", "data-model": name, "aria-labelledby": id + "-name" });
  const head = element("div", { class: "model-head" });
  head.appendChild(element("h2", { id: id + "-name" }, name));
  const meta = element("dl", { class: "meta" });
  const fields = {};
  for (const [key, label] of [["aliases", "aliases"], ["policy", "policy"], ["queue", "queued"],
                              ["start", "start"], ["idle", "idle after"], ["replicas", "replicas"]]) {
    const item = element("div");
    item.appendChild(element("dt", {}, label));
    fields[key] = element("dd", { "data-field": key });
    item.appendChild(fields[key]);
    meta.appendChild(item);
    fields[key + "Item"] = item;
  }
  head.appendChild(meta);
  const actions = element("div", { class: "actions" });
  const result = element("span", { class: "result", role: "status", "aria-live": "polite", id: id + "-result" });
  const button = element("button", {
    type: "button", "data-restart": name, "aria-describedby": id + "-result",
    title: "Replace every replica one at a time, without failing a request"
  }, "Restart");
  button.setAttribute("aria-label", "Restart " + name);
  button.addEventListener("click", () => restart(name, button, result));
  actions.append(result, button);
  head.appendChild(actions);
  root.appendChild(head);

  const table = element("table");
  table.appendChild(element("caption", { class: "visually-hidden" }, "Instances of " + name));
  const headRow = element("tr");
  for (const [label, kind, width, meaning] of COLUMNS) {
    const th = headRow.appendChild(element("th", { scope: "col", class: kind }, label));
    if (meaning) th.title = meaning;
    if (width) th.style.width = width;
  }
  table.appendChild(element("thead")).appendChild(headRow);
  const body = table.appendChild(element("tbody"));
  root.appendChild(table);
  const section = { root, fields, button, body, rows: new Map() };
  sections.set(name, section);
  return section;
}

function updateSection(section, model, instances) {
  const f = section.fields;
  setText(f.aliases, (model.aliases || []).join(", "));
  f.aliasesItem.hidden = !(model.aliases && model.aliases.length);
  setText(f.policy, model.policy || "–");
  setText(f.queue, model.queueDepth || 0);
  setText(f.start, model.start || "always");
  f.idleItem.hidden = model.idleTimeoutSeconds === undefined || model.idleTimeoutSeconds === null;
  if (!f.idleItem.hidden) setText(f.idle, duration(model.idleTimeoutSeconds));
  setText(f.replicas, model.replicas + ((model.endpoints || []).length ? " + " + model.endpoints.length + " endpoints" : ""));
  // Restart replaces managed replicas; a model of unmanaged endpoints only has nothing for it to do.
  section.button.hidden = !(model.replicas > 0);

  // During a hot swap a replica shows twice (old and new generation), so rows are keyed by both.
  const seen = new Set();
  const rows = [];
  for (const instance of instances) {
    const key = instance.id + "#" + (instance.generation || 0);
    seen.add(key);
    let row = section.rows.get(key);
    if (!row) {
      row = createRow(instance);
      section.rows.set(key, row);
    }
    updateRow(row, instance);
    rows.push(row.tr);
  }
  for (const [key, row] of section.rows) {
    if (!seen.has(key)) {
      row.tr.remove();
      section.rows.delete(key);
    }
  }
  placeInOrder(section.body, rows);
}

function createRow(instance) {
  const tr = element("tr", { "data-instance": instance.id, "data-state": instance.state,
                             "data-generation": String(instance.generation || 0) });
  const cells = COLUMNS.map(([, kind]) => tr.appendChild(element("td", kind ? { class: kind } : {})));
  const [name, state] = cells;
  const th = element("th", { scope: "row", title: instance.id }, instance.id);
  name.replaceWith(th);
  cells[0] = th;
  if (instance.managed === false) th.appendChild(element("span", { class: "tag" }, "endpoint"));
  if (instance.generation) th.appendChild(element("span", { class: "tag" }, "gen " + instance.generation));
  const badge = state.appendChild(element("span", { class: "badge" }));
  const stateSince = state.appendChild(element("span", { class: "since" }));
  const load = element("span", { class: "load" });
  const bar = load.appendChild(element("span", { class: "bar", "aria-hidden": "true" }));
  const fill = bar.appendChild(element("span"));
  const loadText = load.appendChild(element("span"));
  cells[4].appendChild(load);
  cells[11].className = "last-error";
  const lastError = cells[11].appendChild(element("div", { class: "clamp" }));
  return { tr, cells, badge, stateSince, bar, fill, loadText, lastError };
}

function updateRow(row, instance) {
  const traffic = instance.traffic;
  const c = row.cells;
  if (row.tr.getAttribute("data-state") !== instance.state) row.tr.setAttribute("data-state", instance.state);
  row.badge.setAttribute("data-state", instance.state);
  setText(row.badge, instance.state);
  setText(row.stateSince, since(instance.since));
  row.stateSince.title = "since " + new Date(instance.since).toLocaleString();
  setText(c[2], instance.port ?? "–");
  setText(c[3], instance.pid ?? "–");
  if (traffic) {
    const share = traffic.capacity > 0 ? Math.min(1, traffic.inFlight / traffic.capacity) : 0;
    row.fill.style.width = Math.round(share * 100) + "%";
    row.bar.classList.toggle("full", share >= 1);
    setText(row.loadText, traffic.inFlight + " / " + traffic.capacity);
    row.loadText.title = traffic.inRotation ? "in rotation" : "out of rotation";
    c[4].classList.toggle("dim", !traffic.inRotation);
    setText(c[5], traffic.served);
    setText(c[6], traffic.errors);
    setText(c[7], milliseconds(traffic.lastLatencyMs));
    setText(c[8], milliseconds(traffic.lastFirstByteMs));
    setText(c[9], traffic.lastTokensPerSecond == null ? "–" : traffic.lastTokensPerSecond.toFixed(1));
    c[9].title = (traffic.tokens || 0) + " tokens generated in all";
  } else {
    row.fill.style.width = "0";
    setText(row.loadText, "–");
    row.loadText.title = "not in its model's pool";
    for (const index of [5, 6, 7, 8, 9]) setText(c[index], "–");
  }
  setText(c[10], instance.restarts);
  setText(row.lastError, instance.lastError || "");
  row.lastError.title = instance.lastError || "";
}

async function restart(name, button, result) {
  const focused = document.activeElement === button;   // disabling it takes the focus away; give it back after
  button.disabled = true;
  setText(button, "Restarting…");
  result.classList.remove("error");
  setText(result, "Replacing the replicas one at a time…");
  try {
    const response = await fetch("control/restart/" + encodeURIComponent(name),
                                   { method: "POST", headers: { "X-Fleet-Client": "dashboard" } });
    let body = null;
    try { body = await response.json(); } catch (ignored) { body = null; }
    if (!response.ok) {
      const error = body && body.error;
      if (typeof error === "string") throw new Problem(error);
      if (error && typeof error.message === "string") throw new Problem(error.message);
      throw problemFor(response, "Restart failed");
    }
    const replaced = (body && body.replaced) || [];
    const done = replaced.map((r) => r.replica + " (pid " + (r.oldPid ?? "–") + " → " + (r.newPid ?? "–") + ")");
    setText(result, replaced.length
      ? "Restarted " + done.join(", ") + " at " + new Date().toLocaleTimeString() + "."
      : "Nothing to restart: no instance of " + name + " runs.");
  } catch (error) {
    result.classList.add("error");
    setText(result, error instanceof Problem ? error.message : "Restart failed: " + error.message);
  } finally {
    button.disabled = false;
    setText(button, "Restart");
    if (focused && document.activeElement === document.body) button.focus();
  }
}

poll();
</script>
</body>
</html>
"""#
}
