// The dashboard: plain DOM, no build step. Every read goes through the REST API with the
// session cookie the login set; every text from the API is put in with textContent.
"use strict";

const API = "/api/v1";

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c ?? "");
  return e;
}

async function api(path, options = {}) {
  const response = await fetch(API + path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    location.href = "/dashboard";
    throw new Error("signed out");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body?.error?.message || response.statusText);
  }
  return response.status === 204 ? null : response.json();
}

function when(text) {
  if (!text) return t("never");
  const d = new Date(text);
  return isNaN(d) ? text : d.toLocaleString(lang() === "zh" ? "zh-CN" : "en");
}

// ---- tabs
let shown = "sources";
function show(tab) {
  shown = tab;
  for (const s of document.querySelectorAll("main > section")) s.classList.toggle("shown", s.id === tab);
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.tab === tab);
  if (location.hash !== "#" + tab) history.replaceState(null, "", "#" + tab);
  refresh();
}

// ---- sources
let sources = [];
async function loadSources() {
  sources = await api("/sources");
  const rows = document.getElementById("sources-rows");
  rows.replaceChildren(...sources.map((s) => {
    const h = s.health || {};
    const yesNo = (v) => v === undefined ? t("unknown") : el("span", { class: v ? "ok" : "bad" }, t(v ? "yes" : "no"));
    const refused = s.rejections.filter((r) => r.count > 0).map((r) => `${r.reason}: ${r.count}`).join(", ");
    const failure = h.last_failure ? `${when(h.last_failure.at)}: ${h.last_failure.reason}` : "";
    return el("tr", { "data-source": s.name },
      el("td", {}, s.name), el("td", {}, s.platform), el("td", {}, yesNo(s.running)),
      el("td", {}, yesNo(h.connected)), el("td", {}, h.reader_mode ? `${h.reader_mode} (${h.reader})` : t("unknown")),
      el("td", {}, h.last_screen_read ? when(h.last_screen_read) : t("unknown")),
      el("td", {}, when(h.last_success)), el("td", { class: "bad" }, failure), el("td", {}, refused));
  }));
  ensurePhones();
}

// ---- live phones
// Boxes are drawn here, as SVG over the <img>, rather than into the PNG on the server: the
// controller passes the phone's PNG on untouched (no decode and re-encode per screen, which
// keeps its CPU and memory down), and the boxes stay sharp at any size and carry their
// role and text as a tooltip.
const phones = new Map();
function ensurePhones() {
  const box = document.getElementById("phones");
  const wanted = sources.filter((s) => s.platform === "wechat").map((s) => s.name);
  if (wanted.length === 0 && phones.size === 0) {
    box.replaceChildren(el("p", { class: "hint", "data-i18n": "live.none" }, t("live.none")));
    return;
  }
  for (const name of wanted) {
    if (phones.has(name)) continue;
    if (phones.size === 0) box.replaceChildren();
    const card = el("div", { class: "phone", "data-phone": name });
    const state = el("span", { class: "state hint" }, t("live.waiting"));
    const img = el("img", { alt: name });
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("preserveAspectRatio", "none");
    const read = el("ul", { class: "read-list" });
    const log = el("ul", { class: "log-list log" });
    card.append(el("h3", {}, name + " ", state), el("div", { class: "screen" }, img, svg),
      el("div", {}, el("h4", { "data-i18n": "live.read" }, t("live.read")), read,
        el("h4", { "data-i18n": "live.log" }, t("live.log")), log));
    box.append(card);
    const source = new EventSource(`${API}/phones/${encodeURIComponent(name)}/live`);
    source.addEventListener("screen", (e) => drawScreen(JSON.parse(e.data), { state, img, svg, read }));
    source.addEventListener("activity", (e) => logActivity(JSON.parse(e.data), log));
    phones.set(name, source);
  }
}

function drawScreen(screen, { state, img, svg, read }) {
  // From the phone's read to this page, for the benchmarks (same clock on one machine).
  (window.liveDelays ||= []).push(Date.now() - screen.at_ms);
  state.textContent = `${t("screen." + screen.kind)} · ${new Date(screen.at_ms).toLocaleTimeString()}`;
  state.dataset.at = screen.at_ms;
  if (screen.screenshot) img.src = screen.screenshot;
  if (screen.size) svg.setAttribute("viewBox", `0 0 ${screen.size[0]} ${screen.size[1]}`);
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren(...screen.boxes.map((b) => {
    const r = document.createElementNS(ns, "rect");
    const [l, top, right, bottom] = b.bounds;
    r.setAttribute("x", l); r.setAttribute("y", top);
    r.setAttribute("width", Math.max(0, right - l)); r.setAttribute("height", Math.max(0, bottom - top));
    r.setAttribute("class", b.role);
    const title = document.createElementNS(ns, "title");
    title.textContent = b.label ? `${b.role}: ${b.label}` : b.role;
    r.append(title);
    return r;
  }));
  const lines = [];
  if (screen.title) lines.push(el("li", {}, el("b", {}, screen.title)));
  for (const row of screen.rows) lines.push(el("li", {}, `${row.unread ? "● " : ""}${row.title ?? ""} — ${row.preview ?? ""}`));
  for (const m of screen.messages) {
    if (m.kind === "time_divider") lines.push(el("li", { class: "hint" }, m.text ?? ""));
    else lines.push(el("li", {}, `${m.side === "right" ? "→ " : "← "}${m.sender ? m.sender + ": " : ""}${m.text ?? "[" + m.kind + "]"}`));
  }
  read.replaceChildren(...lines);
}

function logActivity(a, log) {
  let text;
  if (a.activity === "received") text = `← [${a.conversation}] ${a.sender ?? ""}: ${a.text ?? ""}`;
  else if (a.activity === "replied") text = `→ [${a.conversation}] ${a.text}`;
  else if (a.activity === "reply_failed") text = `✗ [${a.conversation}] ${a.reason}`;
  else if (a.activity === "device") text = `· ${a.status?.status ?? ""}`;
  else return;
  log.prepend(el("li", { class: a.activity }, `${new Date().toLocaleTimeString()} ${text}`));
  while (log.children.length > 100) log.lastChild.remove();
}

// ---- conversations
let current = null;
async function loadConversations() {
  const list = await api("/conversations?limit=200");
  const ul = document.getElementById("conversation-list");
  if (list.length === 0) {
    ul.replaceChildren(el("li", { class: "hint" }, t("conv.empty")));
    return;
  }
  ul.replaceChildren(...list.map((c) => {
    const key = `${c.source}/${c.id}`;
    const li = el("li", { "data-conversation": c.id, "data-source": c.source, class: current === key ? "active" : "" },
      el("div", {}, el("b", {}, c.title ?? c.id)), el("div", { class: "hint" }, `${c.source} · ${when(c.last_activity)}`));
    li.onclick = () => { current = key; currentParts = [c.source, c.id]; loadConversations(); loadMessages(); };
    return li;
  }));
}

let currentParts = null;
async function loadMessages() {
  const ul = document.getElementById("messages");
  if (!currentParts) {
    ul.replaceChildren(el("li", { class: "hint" }, t("conv.pick")));
    return;
  }
  const [source, id] = currentParts;
  document.getElementById("conversation-title").textContent = `${id} · ${source}`;
  const messages = await api(`/conversations/${encodeURIComponent(source)}/${encodeURIComponent(id)}/messages?limit=100`);
  ul.replaceChildren(...messages.map((m) => el("li", { class: m.direction, "data-status": m.status },
    m.direction === "in" && m.sender ? el("span", { class: "meta" }, m.sender) : "",
    m.text, el("span", { class: "meta" }, `${when(m.at)} · ${m.status}`))));
}

// ---- dead letters
async function loadDlq() {
  const letters = await api("/dlq");
  const rows = document.getElementById("dlq-rows");
  if (letters.length === 0) {
    rows.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "hint" }, t("dlq.empty"))));
    return;
  }
  rows.replaceChildren(...letters.map((l) => {
    const text = (l.event.content || []).map((c) => c.text ?? "").join(" ");
    const act = (method, path) => async () => {
      try { await api(path, { method }); } catch (e) { alert(e.message); }
      loadDlq();
    };
    return el("tr", { "data-letter": l.id }, el("td", {}, l.handler), el("td", { class: "bad" }, l.error), el("td", {}, String(l.attempts)),
      el("td", {}, text), el("td", {}, when(l.created_at)),
      el("td", {}, el("button", { onclick: act("POST", `/dlq/${encodeURIComponent(l.id)}/replay`) }, t("replay")), " ",
        el("button", { onclick: act("DELETE", `/dlq/${encodeURIComponent(l.id)}`) }, t("drop"))));
  }));
}

// ---- grants
async function loadGrants() {
  const grants = await api("/grants");
  document.getElementById("grant-rows").replaceChildren(...grants.map((g) => {
    const q = new URLSearchParams({ user: g.user, scene: g.scene });
    if (g.command) q.set("command", g.command);
    return el("tr", {}, el("td", {}, g.user), el("td", {}, g.scene), el("td", {}, g.command ?? ""),
      el("td", {}, g.expires_at ? when(g.expires_at) : "∞"), el("td", {}, g.granted_by),
      el("td", {}, el("button", { onclick: async () => { await api(`/grants?${q}`, { method: "DELETE" }); loadGrants(); } }, t("revoke"))));
  }));
}

async function giveGrant(e) {
  e.preventDefault();
  const form = new FormData(e.target);
  const body = {};
  for (const [k, v] of form) if (v) body[k] = v;
  const error = document.getElementById("grant-error");
  try {
    await api("/grants", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    error.textContent = "";
    e.target.reset();
  } catch (err) {
    error.textContent = err.message;
  }
  loadGrants();
}

// ---- refresh loop: the shown tab every two seconds (the live view streams by itself).
async function refresh() {
  try {
    if (shown === "sources" || shown === "live") await loadSources();
    else if (shown === "conversations") { await loadConversations(); await loadMessages(); }
    else if (shown === "dlq") await loadDlq();
    else if (shown === "grants") await loadGrants();
  } catch (e) {
    console.warn(e);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("nav button")) b.onclick = () => show(b.dataset.tab);
  document.getElementById("grant-form").onsubmit = giveGrant;
  document.addEventListener("langchange", refresh);
  const first = location.hash.slice(1);
  show(document.getElementById(first) ? first : "sources");
  loadSources().catch(console.warn);
  setInterval(refresh, 2000);
});
