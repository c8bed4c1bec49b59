/* crmd's pipeline board (docs/board.md): a small app on the same JSON API
 * that programs use. No framework: the DOM is built with createElement and
 * every text the API returns is set with textContent, never parsed as HTML.
 *
 * Layout of this file: the API client (credentials, errors); sign-in; the
 * URL (view and filters); the board (columns, cards, paging, drag and drop,
 * keyboard); the lead drawer (attributes, follow-ups); My day; the funnel.
 * A new feature (trash, history, CSV) is a new view or a drawer section that
 * calls api() and uses the same helpers. */
"use strict";

const STAGES = ["new", "contacted", "qualified", "proposal", "negotiation"];
const STATUSES = ["active", "inactive", "converted", "lost"];
const LEAD_FIELDS = ["name", "source", "value", "probability", "stage", "status", "account_id", "contact_id"];
const PAGE = 20;
const FILTERS = ["stage", "status", "source", "search", "has_overdue"];

const $ = (id) => document.getElementById(id);
const label = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const money = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const leads = (n) => `${n} ${n === 1 ? "lead" : "leads"}`;

/* An element with attributes and children; strings become text nodes. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function announce(text) {
  const live = $("live");
  live.textContent = "";
  /* A new text node, so that the same message twice is read twice. */
  requestAnimationFrame(() => { live.textContent = text; });
}

let toastTimer = 0;
function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
}

/* --- the API client ------------------------------------------------------ */

const session = {
  get app() { return sessionStorage.getItem("crmd.app") || ""; },
  get token() { return sessionStorage.getItem("crmd.token") || ""; },
  set(app, token) {
    sessionStorage.setItem("crmd.app", app);
    sessionStorage.setItem("crmd.token", token);
  },
  clear() { sessionStorage.removeItem("crmd.token"); },
};

class ApiError extends Error {
  constructor(status, errors) {
    super(errors.length ? errors.map((e) => e.detail || e.title).join(" ") : `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

/* One request (extra: more headers; raw: a body sent as it is): resolves
 * to {status, body, headers}; rejects with ApiError on any 4xx or 5xx. A
 * 401 ends the session (the expired screen). */
async function api(method, path, body, extra, raw) {
  const headers = { Authorization: `Bearer ${session.token}`, AppId: session.app, ...extra };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (raw !== undefined) init.body = raw;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, [{ detail: "The server cannot be reached." }]);
  }
  const text = res.status === 204 ? "" : await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  if (res.status === 401) {
    showExpired();
    throw new ApiError(401, (json && json.errors) || []);
  }
  if (!res.ok) throw new ApiError(res.status, (json && json.errors) || []);
  return { status: res.status, body: json, headers: res.headers };
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/* --- sign-in ------------------------------------------------------------- */

/* A link from make run carries the credentials in the fragment (never sent
 * to the server): keep them for this tab and take them off the address bar. */
/* A sign-in link to another app than the one this tab is signed in to,
 * held until the person chooses (showSwitch): a link someone else made
 * must not move a signed-in board to their app unseen, where the leads
 * typed next would go to them. */
let linked = null;

function takeFragment() {
  const h = new URLSearchParams(location.hash.slice(1));
  const app = h.get("app"), token = h.get("token");
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (!app || !token) return;
  if (session.token && session.app && session.app !== app) linked = { app, token };
  else session.set(app, token);
}

function showSwitch() {
  showSignin(`This link signs in to app ${linked.app}, but this tab is signed in to app ${session.app}. ` +
    "Sign in to switch to the link's app, or stay.");
  $("signin-app").value = linked.app;
  $("signin-token").value = linked.token;
  $("signin-stay").hidden = false;
}

function tokenExpired(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part));
    return typeof claims.exp === "number" && claims.exp * 1000 <= Date.now();
  } catch (e) {
    return false; /* not ours to judge: the server answers 401 if it is bad */
  }
}

function showOnly(id) {
  for (const s of ["signin", "view-board", "view-myday", "view-funnel", "view-trash"]) $(s).hidden = s !== id;
  $("top").hidden = id === "signin";
}

function showSignin(note) {
  showOnly("signin");
  if ($("drawer").open) $("drawer").close();
  $("signin-note").textContent = note || "Sign in with your app key and a token.";
  $("signin-stay").hidden = true;
  $("signin-app").value = session.app;
  $("signin-token").value = "";
  (session.app ? $("signin-token") : $("signin-app")).focus();
}

function showExpired() {
  session.clear();
  showSignin("Your session has expired or its token is no longer accepted. Sign in again with a new token.");
}

async function signIn(ev) {
  ev.preventDefault();
  const app = $("signin-app").value.trim(), token = $("signin-token").value.trim();
  if (!app || !token) {
    $("signin-error").textContent = "Both the app key and the token are needed.";
    return;
  }
  session.set(app, token);
  $("signin-error").textContent = "";
  try {
    await api("GET", "/leads/summary");
  } catch (e) {
    $("signin-error").textContent = e.status === 401 ? "The server did not accept this key and token." : e.message;
    return;
  }
  linked = null;
  route();
}

/* --- the URL: the view and the filters ----------------------------------- */

function urlState() {
  const q = new URLSearchParams(location.search);
  const f = {};
  for (const k of FILTERS) f[k] = q.get(k) || "";
  return { view: q.get("view") || "board", filters: f };
}

function setUrl(view, filters) {
  const q = { view: view === "board" ? "" : view, ...filters };
  history.pushState(null, "", location.pathname + query(q));
}

function filterForm() {
  const f = {};
  for (const k of FILTERS) {
    const input = $("filters").elements[k];
    f[k] = input.type === "checkbox" ? (input.checked ? "true" : "") : input.value.trim();
  }
  return f;
}

function fillFilterForm(f) {
  for (const k of FILTERS) {
    const input = $("filters").elements[k];
    if (input.type === "checkbox") input.checked = f[k] === "true";
    else input.value = f[k];
  }
}

/* The filters as the API's query parameters: the same names and values
 * (the stage filter also picks the columns shown). */
function leadParams(f) {
  return { ...f };
}

function route() {
  if (!session.token) { showSignin(); return; }
  if (linked) { showSwitch(); return; }
  if (tokenExpired(session.token)) { showExpired(); return; }
  $("who").textContent = `App ${session.app}`;
  const { view, filters } = urlState();
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  fillFilterForm(filters);
  if (view === "myday") { showOnly("view-myday"); loadMyDay(); }
  else if (view === "funnel") { showOnly("view-funnel"); loadFunnel(filters); }
  else if (view === "trash") { showOnly("view-trash"); loadTrash(null); }
  else { showOnly("view-board"); loadBoard(filters); }
}

/* --- the board ------------------------------------------------------------ */

const board = { filters: {}, columns: new Map(), generation: 0 };

function stageHeader(stage) {
  return el("div", { class: "col-head" },
    el("h3", { id: `h-${stage}`, text: label(stage) }),
    el("p", { class: "col-sum", id: `sum-${stage}` }));
}

function makeColumn(stage) {
  const list = el("ul", { class: "cards", "aria-labelledby": `h-${stage}`, "data-stage": stage });
  const sentinel = el("li", { class: "sentinel", "aria-hidden": "true" });
  list.append(sentinel);
  const col = el("section", { class: "column", "data-stage": stage }, stageHeader(stage), list);
  col.addEventListener("dragover", (e) => { e.preventDefault(); col.classList.add("drop"); });
  col.addEventListener("dragleave", () => col.classList.remove("drop"));
  col.addEventListener("drop", (e) => {
    e.preventDefault();
    col.classList.remove("drop");
    const id = e.dataTransfer.getData("text/plain");
    if (id) moveLead(id, stage);
  });
  const state = { stage, list, sentinel, cursor: null, done: false, loading: null, col };
  state.observer = new IntersectionObserver((entries) => {
    if (entries.some((x) => x.isIntersecting)) loadMore(state);
  }, { root: null, rootMargin: "200px" });
  return state;
}

async function loadBoard(filters) {
  board.filters = filters;
  board.generation++;
  for (const c of board.columns.values()) c.observer.disconnect();
  board.columns.clear();
  const root = $("board");
  root.replaceChildren();
  delete root.dataset.ready;
  $("board-error").textContent = "";
  const stages = filters.stage ? STAGES.filter((s) => s === filters.stage) : STAGES;
  for (const s of stages) {
    const c = makeColumn(s);
    board.columns.set(s, c);
    root.append(c.col);
  }
  /* The summary first: when the token is refused, that one request says so. */
  const gen = board.generation;
  if (!(await refreshSummary()) || gen !== board.generation) return;
  for (const c of board.columns.values()) c.observer.observe(c.sentinel);
  await Promise.all([...board.columns.values()].map(loadMore));
  if (gen !== board.generation) return;
  root.dataset.ready = String(gen);
  performance.mark("board-ready"); /* read by bench/board.mjs */
}

/* The column headers from /leads/summary with the board's filters; false
 * when it could not be read. */
async function refreshSummary() {
  const gen = board.generation;
  let s;
  try {
    s = (await api("GET", `/leads/summary${query(leadParams(board.filters))}`)).body.data.attributes;
  } catch (e) {
    if (e.status !== 401) $("board-error").textContent = e.message;
    return false;
  }
  if (gen !== board.generation) return true; /* the filters changed meanwhile */
  for (const st of s.stages) {
    const out = $(`sum-${st.stage}`);
    if (!out) continue;
    out.textContent = `${leads(st.count)} · ${money.format(st.value)} · weighted ${money.format(st.weightedValue)}`;
    out.dataset.count = st.count;
  }
  return true;
}

/* The next page of a column (one at a time), with its leads' follow-ups. */
function loadMore(c) {
  if (c.done || c.loading) return c.loading;
  const gen = board.generation;
  c.loading = (async () => {
    const p = { ...leadParams(board.filters), stage: c.stage, records: PAGE, count: "none" };
    if (c.cursor) p.cursor = c.cursor;
    try {
      const body = (await api("GET", `/leads/${query(p)}`)).body;
      const next = await nextFollows(body.data.map((l) => l.id));
      if (gen !== board.generation) return;
      for (const lead of body.data) {
        if (!c.list.querySelector(`[data-id="${lead.id}"]`)) c.list.insertBefore(card(lead, next.get(lead.id)), c.sentinel);
      }
      c.cursor = body.meta.nextCursor;
      c.done = !c.cursor;
    } catch (e) {
      if (e.status !== 401) $("board-error").textContent = e.message;
      c.done = true;
    } finally {
      c.loading = null;
    }
    /* The sentinel may still be in view: go on until it is not. */
    if (!c.done && gen === board.generation && inView(c)) await loadMore(c);
  })();
  return c.loading;
}

/* Whether a column's end is within 200 px of the visible part of its list
 * (the list scrolls on its own on a wide screen, with the page on a phone). */
function inView(c) {
  const r = c.sentinel.getBoundingClientRect(), box = c.list.getBoundingClientRect();
  return r.width > 0 && r.top < Math.min(box.bottom, innerHeight) + 200;
}

/* The earliest open follow-up of each of ids (one request). */
async function nextFollows(ids) {
  const out = new Map();
  if (!ids.length) return out;
  const p = { lead_id: ids.join(","), status: "pending,overdue", records: 100 };
  const body = (await api("GET", `/follows/${query(p)}`)).body;
  for (const f of body.data) {
    const lead = f.relationships.lead.data.id;
    if (!out.has(lead)) out.set(lead, f.attributes);
  }
  return out;
}

function fmtDate(iso) {
  return iso ? new Date(iso).toLocaleDateString("en-CA") : "";
}

function card(lead, next) {
  const a = lead.attributes;
  const info = el("dl", { class: "facts" });
  const fact = (k, v) => { if (v !== null && v !== undefined && v !== "") info.append(el("dt", { text: k }), el("dd", { text: String(v) })); };
  fact("Value", a.value === null ? null : money.format(a.value));
  fact("Probability", a.probability === null ? null : `${a.probability}%`);
  fact("Source", a.source);
  fact("Next", next ? fmtDate(next.due_date) || next.title : null);
  const overdue = next && next.status === "overdue";
  const li = el("li", {
    class: "card", tabindex: "0", draggable: "true", "data-id": lead.id, "data-stage": a.stage,
    "aria-describedby": "board-keys",
  },
    el("p", { class: "card-name", text: a.name }),
    info,
    overdue ? el("span", { class: "badge", text: "Overdue" }) : null);
  li.lead = lead;
  li.next = next || null;
  li.addEventListener("dragstart", (e) => {
    e.dataTransfer.setData("text/plain", lead.id);
    e.dataTransfer.effectAllowed = "move";
  });
  li.addEventListener("click", () => openLead(lead.id));
  li.addEventListener("keydown", cardKey);
  return li;
}

function cardsOf(stage) {
  const c = board.columns.get(stage);
  return c ? [...c.list.querySelectorAll(".card")] : [];
}

/* Arrow keys move the focus; Shift+Left/Right moves the card; Enter opens it. */
function cardKey(e) {
  const li = e.currentTarget;
  const stage = li.dataset.stage;
  const shown = [...board.columns.keys()];
  const col = shown.indexOf(stage);
  const cards = cardsOf(stage);
  const row = cards.indexOf(li);
  let target = null;
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    openLead(li.dataset.id);
    return;
  }
  if (e.shiftKey && (e.key === "ArrowRight" || e.key === "ArrowLeft")) {
    e.preventDefault();
    const to = STAGES[STAGES.indexOf(stage) + (e.key === "ArrowRight" ? 1 : -1)];
    if (to) moveLead(li.dataset.id, to, true);
    else announce(`${li.lead.attributes.name} is already in the ${e.key === "ArrowRight" ? "last" : "first"} stage.`);
    return;
  }
  if (e.key === "ArrowDown") target = cards[row + 1];
  else if (e.key === "ArrowUp") target = cards[row - 1];
  else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
    for (let i = col + (e.key === "ArrowRight" ? 1 : -1); i >= 0 && i < shown.length; i += e.key === "ArrowRight" ? 1 : -1) {
      const other = cardsOf(shown[i]);
      if (other.length) { target = other[Math.min(row, other.length - 1)]; break; }
    }
  } else return;
  e.preventDefault();
  if (target) target.focus();
}

/* A lead as the server has it now, with its ETag. */
async function readLead(id) {
  const res = await api("GET", `/leads/${id}`);
  const lead = res.body.data;
  lead.etag = res.headers.get("ETag");
  return lead;
}

/* Every write of a lead goes through here: PUT with the attributes, sent
 * only if the lead is still as shown (If-Match with its ETag); a 412 means
 * someone changed it meanwhile. */
async function writeLead(lead, attrs) {
  const res = await api("PUT", `/leads/${lead.id}`, { lead: attrs }, { "If-Match": lead.etag });
  const fresh = res.body.data;
  fresh.etag = res.headers.get("ETag");
  return fresh;
}

async function moveLead(id, stage, keyboard) {
  const li = $("board").querySelector(`.card[data-id="${id}"]`);
  if (!li || li.dataset.stage === stage) return;
  const name = li.lead.attributes.name;
  let lead;
  try {
    /* The card shows the lead as a list read it; the write goes only if it
     * is still so (its updated_at now, its ETag until the PUT). */
    const now = await readLead(id);
    if (now.attributes.updated_at !== li.lead.attributes.updated_at) throw new ApiError(412, []);
    lead = await writeLead(now, { stage });
  } catch (e) {
    if (e.status === 412 || e.status === 404) await reloadCard(li, e.status);
    else if (e.status !== 401) { toast(`Could not move ${name}: ${e.message}`); announce(`Could not move ${name}.`); }
    return;
  }
  placeCard(lead, li);
  const moved = $("board").querySelector(`.card[data-id="${id}"]`);
  if (keyboard && moved) moved.focus();
  announce(`Moved ${lead.attributes.name} to ${label(stage)}.`);
  await refreshSummary();
}

/* After a conflict: the card as the lead is now (or gone), and why. */
async function reloadCard(li, status) {
  const name = li.lead.attributes.name;
  let msg;
  try {
    if (status === 404) throw new ApiError(404, []);
    const lead = await readLead(li.dataset.id);
    placeCard(lead, li);
    msg = `${name} was changed by someone else meanwhile: the card shows it as it is now. Nothing was moved.`;
  } catch (e) {
    if (e.status === 401) return;
    li.remove();
    msg = `${name} was deleted by someone else meanwhile.`;
  }
  toast(msg);
  announce(msg);
  await refreshSummary();
}

/* Puts a lead's card first in its column, in place of old, showing the
 * next follow-up that old showed. */
function placeCard(lead, old) {
  const fresh = card(lead, old ? old.next : null);
  if (old) old.remove();
  const c = board.columns.get(lead.attributes.stage);
  if (c && matchesFilters(lead)) c.list.prepend(fresh);
  return fresh;
}

/* Whether a changed lead still belongs on the filtered board (the simple
 * filters; search and overdue are the server's to judge on reload). */
function matchesFilters(lead) {
  const a = lead.attributes, f = board.filters;
  if (f.stage && a.stage !== f.stage) return false;
  if (f.status && a.status !== f.status) return false;
  if (f.source && a.source !== f.source) return false;
  return true;
}

/* --- CSV ------------------------------------------------------------------- */

/* Every lead the board's filters keep, as the server's CSV, saved as a file
 * (a fetch, since the token goes in a header; then a blob: download). */
async function exportCsv() {
  const res = await fetch(`/leads/${query(leadParams(board.filters))}`, {
    headers: { Authorization: `Bearer ${session.token}`, AppId: session.app, Accept: "text/csv" }, cache: "no-store",
  });
  if (res.status === 401) { showExpired(); return; }
  if (!res.ok) { toast(`Export failed (HTTP ${res.status}).`); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: `leads-${new Date().toISOString().slice(0, 10)}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  announce("Exported the leads as CSV.");
}

/* A CSV file's leads, all or nothing: the rows' errors are listed by row. */
async function importCsv(ev) {
  const file = ev.target.files[0];
  ev.target.value = "";
  if (!file) return;
  const out = $("import-result");
  out.replaceChildren();
  let res;
  try {
    // The file's bytes as they are: file.text() would turn a file that is
    // not UTF-8 (Excel's Windows-1252) into U+FFFD, imported without a word.
    res = await api("POST", "/leads/import", undefined, { "Content-Type": "text/csv" }, file);
  } catch (e) {
    if (e.status === 401) return;
    const rows = e.errors.map((x) => {
      const m = ((x.source && x.source.pointer) || "").match(/^\/rows\/(\d+)(?:\/([a-z_]+))?$/);
      return el("li", { text: m ? `Row ${m[1]}${m[2] ? `, ${m[2]}` : ""}: ${x.detail || x.title}` : x.detail || x.title });
    });
    out.append(el("p", { text: `Nothing was imported from ${file.name}:` }), el("ul", {}, ...rows));
    return;
  }
  out.append(el("p", { text: `Imported ${res.body.meta.created} leads from ${file.name}.` }));
  await loadBoard(board.filters);
}

/* --- the lead drawer ------------------------------------------------------ */

const drawer = { id: null, lead: null };

function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  for (const p of form.querySelectorAll(".error")) p.textContent = "";
}

/* Shows each error beside the field its source.pointer names ("/lead/name"),
 * the rest above the form. */
function showErrors(form, prefix, wrapper, e) {
  const general = [];
  let first = null;
  for (const err of e.errors.length ? e.errors : [{ detail: e.message }]) {
    const ptr = (err.source && err.source.pointer) || "";
    const m = ptr.match(new RegExp(`^/${wrapper}/([a-z_]+)$`));
    const out = m && $(`e-${prefix}${m[1]}`);
    if (out) {
      out.textContent = err.detail || err.title;
      const input = form.elements[m[1]];
      input.setAttribute("aria-invalid", "true");
      first = first || input;
    } else {
      general.push(err.detail || err.title);
    }
  }
  form.querySelector(".error").textContent = general.join(" ");
  if (first) first.focus();
}

function fillLeadForm(a) {
  const f = $("lead-form");
  for (const k of LEAD_FIELDS) f.elements[k].value = a[k] === null || a[k] === undefined ? "" : String(a[k]);
  $("lead-meta").textContent = a.created_at ? `Created ${new Date(a.created_at).toLocaleString()} · updated ${new Date(a.updated_at).toLocaleString()}` : "";
}

/* The form's attributes: empty optional fields are null (cleared); value
 * and probability go as typed, for the API to judge. */
function leadForm(creating) {
  const f = $("lead-form"), out = {};
  for (const k of LEAD_FIELDS) {
    const v = f.elements[k].value.trim();
    if (v === "" && creating) continue;
    if (k === "probability" && v !== "" && /^-?\d+$/.test(v)) out[k] = Number(v);
    else out[k] = v === "" && !["name", "stage", "status"].includes(k) ? null : v;
  }
  return out;
}

function openDrawer(title) {
  $("drawer-title").textContent = title;
  clearErrors($("lead-form"));
  clearErrors($("follow-form"));
  if (!$("drawer").open) $("drawer").showModal();
}

function newLead() {
  drawer.id = null;
  drawer.lead = null;
  fillLeadForm({ stage: board.filters.stage || "new", status: "active" });
  $("lead-delete").hidden = true;
  $("follows-section").hidden = true;
  $("history-section").hidden = true;
  openDrawer("New lead");
  $("l-name").focus();
}

async function openLead(id) {
  let lead;
  try {
    lead = await readLead(id);
  } catch (e) {
    if (e.status !== 401) toast(e.message);
    return;
  }
  drawer.id = id;
  drawer.lead = lead;
  fillLeadForm(lead.attributes);
  $("lead-delete").hidden = false;
  $("follows-section").hidden = false;
  $("history-section").hidden = false;
  openDrawer(lead.attributes.name);
  await loadFollows();
}

async function saveLead(ev) {
  ev.preventDefault();
  const form = $("lead-form");
  clearErrors(form);
  const creating = drawer.id === null;
  let lead;
  try {
    if (creating) {
      const res = await api("POST", "/leads/", { lead: leadForm(true) });
      lead = res.body.data;
      lead.etag = res.headers.get("ETag");
    } else {
      lead = await writeLead(drawer.lead, leadForm(false));
    }
  } catch (e) {
    if (e.status === 412) await drawerConflict();
    else if (e.status !== 401) showErrors(form, "", "lead", e);
    return;
  }
  const old = $("board").querySelector(`.card[data-id="${lead.id}"]`);
  placeCard(lead, old);
  drawer.id = lead.id;
  drawer.lead = lead;
  fillLeadForm(lead.attributes);
  $("drawer-title").textContent = lead.attributes.name;
  $("lead-delete").hidden = false;
  $("follows-section").hidden = false;
  $("history-section").hidden = false;
  await (creating ? loadFollows() : loadHistory());
  announce(creating ? `Created ${lead.attributes.name}.` : `Saved ${lead.attributes.name}.`);
  toast(creating ? "Lead created." : "Lead saved.");
  await refreshSummary();
}

/* The drawer's lead changed on the server since it was opened: shown anew. */
async function drawerConflict() {
  const keep = $("lead-error");
  try {
    drawer.lead = await readLead(drawer.id);
  } catch (e) {
    if (e.status !== 401) keep.textContent = e.message;
    return;
  }
  fillLeadForm(drawer.lead.attributes);
  const old = $("board").querySelector(`.card[data-id="${drawer.id}"]`);
  if (old) placeCard(drawer.lead, old);
  keep.textContent = "Someone else changed this lead meanwhile; it is shown as it is now. Make your change again.";
}

/* Moves the lead (and its follow-ups) to the trash, whence it can be recovered. */
async function deleteLead() {
  try {
    await api("DELETE", `/leads/${drawer.id}`, undefined, { "If-Match": drawer.lead.etag });
  } catch (e) {
    if (e.status === 412) await drawerConflict();
    else if (e.status !== 401) $("lead-error").textContent = e.message;
    return;
  }
  const li = $("board").querySelector(`.card[data-id="${drawer.id}"]`);
  if (li) li.remove();
  const msg = `Moved ${drawer.lead.attributes.name} to the trash.`;
  announce(msg);
  toast(msg);
  $("drawer").close();
  await refreshSummary();
}

async function loadFollows() {
  const list = $("follows");
  let body;
  try {
    body = (await api("GET", `/leads/${drawer.id}/follows?records=100`)).body;
  } catch (e) {
    if (e.status !== 401) $("follow-error").textContent = e.message;
    return;
  }
  list.replaceChildren(...body.data.map(followItem));
  if (!body.data.length) list.append(el("li", { class: "note", text: "No follow-ups yet." }));
  updateCardFollows(body.data);
  await loadHistory();
}

/* The card's "Next" and overdue badge after the drawer changed follow-ups. */
function updateCardFollows(follows) {
  const old = $("board").querySelector(`.card[data-id="${drawer.id}"]`);
  if (!old) return;
  const open = follows.filter((f) => f.attributes.status !== "completed");
  const next = open.length ? open[0].attributes : null;
  old.replaceWith(card(old.lead, next));
}

/* The lead's last changes, newest first: what changed, from what to what. */
async function loadHistory() {
  const list = $("history");
  delete list.dataset.ready;
  let body;
  try {
    body = (await api("GET", `/leads/${drawer.id}/history?records=20`)).body;
  } catch (e) {
    if (e.status !== 401) list.replaceChildren(el("li", { class: "error", text: e.message }));
    return;
  }
  const show = (v) => (v === null || v === undefined ? "(none)" : String(v));
  list.replaceChildren(...body.data.map((h) => {
    const a = h.attributes;
    const what = Object.entries(a.changes || {}).map(([k, [from, to]]) => `${k}: ${show(from)} → ${show(to)}`);
    return el("li", {},
      el("span", { class: "when", text: `${new Date(a.at).toLocaleString()} · ${a.actor || ""} · ` }),
      el("span", { text: a.action.replace("_", " ") + (what.length ? ` (${what.join("; ")})` : "") }));
  }));
  list.dataset.ready = "1";
}

function followItem(f) {
  const a = f.attributes;
  const done = a.status === "completed";
  const toggle = el("button", { type: "button", text: done ? "Reopen" : "Complete" });
  toggle.addEventListener("click", () => updateFollow(f.id, { status: done ? "pending" : "completed" }));
  const del = el("button", { type: "button", class: "danger", text: "Delete" });
  del.setAttribute("aria-label", `Delete follow-up ${a.title}`);
  toggle.setAttribute("aria-label", `${done ? "Reopen" : "Complete"} follow-up ${a.title}`);
  del.addEventListener("click", () => deleteFollow(f.id));
  return el("li", { class: `follow ${a.status}`, "data-id": f.id },
    el("span", { class: "follow-title", text: a.title }),
    a.description ? el("span", { class: "follow-description", text: a.description }) : null,
    el("span", { class: "follow-due", text: a.due_date ? fmtDate(a.due_date) : "no date" }),
    el("span", { class: `status ${a.status}`, text: a.status }),
    toggle, del);
}

async function followWrite(method, path, body) {
  $("follow-error").textContent = "";
  try {
    await api(method, path, body);
  } catch (e) {
    if (e.status !== 401) $("follow-error").textContent = e.message;
    return false;
  }
  await loadFollows();
  await refreshSummary();
  return true;
}

async function updateFollow(fid, attrs) {
  if (await followWrite("PUT", `/leads/${drawer.id}/follows/${fid}`, { follow: attrs }))
    announce(attrs.status === "completed" ? "Follow-up completed." : "Follow-up reopened.");
}

async function deleteFollow(fid) {
  if (await followWrite("DELETE", `/leads/${drawer.id}/follows/${fid}`)) announce("Follow-up deleted.");
}

async function addFollow(ev) {
  ev.preventDefault();
  const form = $("follow-form");
  clearErrors(form);
  const attrs = { title: form.elements.title.value.trim() };
  const description = form.elements.description.value.trim();
  if (description) attrs.description = description;
  const due = form.elements.due_date.value;
  if (due) attrs.due_date = new Date(due).toISOString();
  try {
    await api("POST", `/leads/${drawer.id}/follows`, { follow: attrs });
  } catch (e) {
    if (e.status !== 401) showErrors(form, "fo-", "follow", e);
    return;
  }
  form.reset();
  announce("Follow-up added.");
  await loadFollows();
  await refreshSummary();
}

/* --- My day --------------------------------------------------------------- */

async function loadMyDay() {
  const end = new Date();
  end.setHours(24, 0, 0, 0);
  const list = $("myday");
  list.replaceChildren();
  delete list.dataset.ready;
  let body;
  try {
    body = (await api("GET", `/follows/${query({ status: "overdue,pending", due_to: end.toISOString(), records: 100 })}`)).body;
  } catch (e) {
    if (e.status !== 401) list.append(el("li", { class: "error", text: e.message }));
    return;
  }
  const names = new Map();
  await Promise.all([...new Set(body.data.map((f) => f.relationships.lead.data.id))].map(async (id) => {
    try { names.set(id, (await api("GET", `/leads/${id}`)).body.data.attributes.name); } catch (e) { names.set(id, ""); }
  }));
  for (const f of body.data) {
    const a = f.attributes, lead = f.relationships.lead.data.id;
    const open = el("button", { type: "button", class: "link", text: names.get(lead) || "(lead)" });
    open.addEventListener("click", () => openLead(lead));
    const done = el("button", { type: "button", text: "Complete", "aria-label": `Complete follow-up ${a.title}` });
    done.addEventListener("click", () => completeFromMyDay(lead, f.id, a.title));
    list.append(el("li", { class: `follow ${a.status}` },
      el("span", { class: "follow-title", text: a.title }),
      el("span", { class: "follow-due", text: fmtDate(a.due_date) }),
      el("span", { class: `status ${a.status}`, text: a.status }), open, done));
  }
  $("myday-empty").hidden = body.data.length > 0;
  list.dataset.ready = "1";
}

async function completeFromMyDay(lead, fid, title) {
  try {
    await api("PUT", `/leads/${lead}/follows/${fid}`, { follow: { status: "completed" } });
  } catch (e) {
    if (e.status !== 401) toast(e.message);
    return;
  }
  announce(`Completed ${title}.`);
  await loadMyDay();
}

/* --- the trash ----------------------------------------------------------- */

const trash = { cursor: null };

/* A page of the trash: the first (cursor null, the list emptied) or the next. */
async function loadTrash(cursor) {
  const list = $("trash");
  if (!cursor) list.replaceChildren();
  delete list.dataset.ready;
  let body;
  try {
    body = (await api("GET", `/leads/trash/show${query({ records: 50, cursor })}`)).body;
  } catch (e) {
    if (e.status !== 401) list.append(el("li", { class: "error", text: e.message }));
    return;
  }
  for (const lead of body.data) list.append(trashItem(lead));
  trash.cursor = body.meta.nextCursor;
  $("trash-more").hidden = !trash.cursor;
  $("trash-empty").hidden = list.children.length > 0;
  list.dataset.ready = "1";
}

function trashItem(lead) {
  const a = lead.attributes;
  const recover = el("button", { type: "button", text: "Recover", "aria-label": `Recover ${a.name}` });
  recover.addEventListener("click", () => trashAction(lead, "PUT", `/leads/${lead.id}/recover`, `Recovered ${a.name}.`));
  const purge = el("button", { type: "button", class: "danger", text: "Delete for good", "aria-label": `Delete ${a.name} for good` });
  purge.addEventListener("click", () => {
    if (!purge.dataset.confirm) { purge.dataset.confirm = "1"; purge.textContent = "Really delete for good?"; return; }
    trashAction(lead, "DELETE", `/leads/trash/${lead.id}`, `Deleted ${a.name} for good.`);
  });
  return el("li", { class: "follow", "data-id": lead.id },
    el("span", { class: "follow-title", text: a.name }),
    el("span", { class: "follow-due", text: `deleted ${new Date(a.deleted_at).toLocaleString()}` }),
    el("span", { class: "status", text: label(a.stage) }), recover, purge);
}

async function trashAction(lead, method, path, done) {
  try {
    await api(method, path);
  } catch (e) {
    if (e.status !== 401) toast(e.message);
    return;
  }
  $("trash").querySelector(`[data-id="${lead.id}"]`)?.remove();
  $("trash-empty").hidden = $("trash").children.length > 0;
  announce(done);
  toast(done);
}

/* --- the funnel ----------------------------------------------------------- */

async function loadFunnel(filters) {
  const box = $("funnel");
  box.replaceChildren();
  delete box.dataset.ready;
  let s;
  try {
    s = (await api("GET", `/leads/summary${query(leadParams(filters))}`)).body.data.attributes;
  } catch (e) {
    if (e.status !== 401) box.append(el("p", { class: "error", text: e.message }));
    return;
  }
  const maxCount = Math.max(1, ...s.stages.map((x) => x.count));
  const maxValue = Math.max(1, ...s.stages.map((x) => Number(x.value)));
  for (const st of s.stages) {
    const countBar = el("span", { class: "bar count" });
    const valueBar = el("span", { class: "bar value" });
    /* CSSOM, which the Content-Security-Policy allows (style attributes it does not). */
    countBar.style.width = `${(100 * st.count) / maxCount}%`;
    valueBar.style.width = `${(100 * Number(st.value)) / maxValue}%`;
    box.append(el("div", { class: "funnel-row" },
      el("span", { class: "funnel-stage", text: label(st.stage) }),
      el("span", { class: "funnel-bars", "aria-hidden": "true" }, countBar, valueBar),
      el("span", { class: "funnel-nums", text: `${leads(st.count)} · value ${money.format(st.value)}` })));
  }
  box.dataset.ready = "1";
}

/* --- start ---------------------------------------------------------------- */

function fillSelects() {
  for (const s of STAGES) {
    $("f-stage").append(el("option", { value: s, text: label(s) }));
    $("l-stage").append(el("option", { value: s, text: label(s) }));
  }
  for (const s of STATUSES) {
    $("f-status").append(el("option", { value: s, text: label(s) }));
    $("l-status").append(el("option", { value: s, text: label(s) }));
  }
}

let filterTimer = 0;
function filtersChanged(delay) {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    setUrl(urlState().view, filterForm());
    route();
  }, delay);
}

function start() {
  fillSelects();
  $("board").parentElement.insertBefore(el("p", { id: "board-keys", class: "sr-only", text: "Arrow keys move between cards; Shift with Left or Right moves the card to the previous or next stage; Enter opens it." }), $("board"));
  $("signin-form").addEventListener("submit", signIn);
  $("signin-stay").addEventListener("click", () => { linked = null; route(); });
  $("sign-out").addEventListener("click", () => { session.clear(); showSignin("Signed out."); });
  $("new-lead").addEventListener("click", newLead);
  $("drawer-close").addEventListener("click", () => $("drawer").close());
  $("lead-form").addEventListener("submit", saveLead);
  $("lead-delete").addEventListener("click", deleteLead);
  $("trash-more").addEventListener("click", () => loadTrash(trash.cursor));
  $("csv-export").addEventListener("click", exportCsv);
  $("csv-import").addEventListener("change", importCsv);
  $("follow-form").addEventListener("submit", addFollow);
  $("filters").addEventListener("change", () => filtersChanged(0));
  $("filters").addEventListener("input", (e) => { if (e.target.type === "search" || e.target.name === "source") filtersChanged(300); });
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); filtersChanged(0); });
  $("filters").addEventListener("reset", () => setTimeout(() => filtersChanged(0), 0));
  for (const a of document.querySelectorAll("nav a")) {
    a.addEventListener("click", (e) => {
      e.preventDefault();
      setUrl(a.dataset.view, urlState().filters);
      route();
    });
  }
  addEventListener("popstate", route);
  /* A sign-in link opened in a tab that shows the board already. */
  addEventListener("hashchange", () => { if (location.hash) { takeFragment(); route(); } });
  takeFragment();
  route();
}

document.addEventListener("DOMContentLoaded", start);
