// The Udders console: a single page over the Udders HTTP API.
// Plain ES module, no dependencies, no build step. Hash routes:
//   #/                 orders board           #/stuck         stuck orders
//   #/orders/{id}      one order (swimlane)   #/dead-letters  dead letters
//   #/portal           event portal           #/tap           live tap
//   #/place            place an order

'use strict';

// ---------------------------------------------------------------- constants

const SERVICES = ['order', 'validation', 'credit', 'inventory', 'payment', 'fulfillment'];
// Deployables that publish as one of the six (their events share its lane).
const DEPLOYABLES = ['validation-us'];
// Services outside the saga that only listen: no lane of their own (they
// publish nothing), but they subscribe, and have dead letters of their own.
const LISTENERS = ['notification', 'insights'];
const ALL_SERVICES = [...SERVICES, ...DEPLOYABLES, ...LISTENERS];
const STATUSES = ['PLACED', 'VALIDATED', 'RESERVED', 'PAID', 'COMPLETED', 'COMPENSATING', 'REJECTED', 'CANCELLED'];
const TERMINAL = new Set(['COMPLETED', 'REJECTED', 'CANCELLED']);
const COUNTRIES = ['sg', 'my', 'kr', 'us', 'id', 'th'];
const CHANNELS = ['lazada', 'shopee', 'store711', 'web', 'pos'];
const FLAVORS = ['vanilla', 'chocolate', 'mango', 'rumraisin', 'durian'];
const SERVICE_COLORS = {
  order: '#2f5fd0', validation: '#7c3aed', 'validation-us': '#7c3aed', credit: '#0e7490',
  inventory: '#15803d', payment: '#be185d', fulfillment: '#475569',
  notification: '#b45309', insights: '#0f766e', other: '#8a94a3',
};
// Which service publishes which domain/action (used when an entry has no `source`).
const PUBLISHER_OF = {
  'order/init': 'order', 'order/cancelled': 'order', 'order/expired': 'order',
  'order/valid': 'validation', 'order/invalid': 'validation',
  'credit/reserved': 'credit', 'credit/rejected': 'credit', 'credit/released': 'credit', 'credit/settled': 'credit',
  'inventory/reserved': 'inventory', 'inventory/rejected': 'inventory', 'inventory/released': 'inventory',
  'payment/captured': 'payment', 'payment/declined': 'payment', 'payment/refunded': 'payment',
  'order/shipped': 'fulfillment', 'fulfillment/failed': 'fulfillment',
};
const SEED_PATTERNS = ['order/>', 'order/init/1.1/>', 'order/valid/*/icecream/**/sg/*', 'order/*/*/*/*/*/*/store711'];
const LS = { operator: 'udders.operatorToken', apiKey: 'udders.apiKey' };
const TAP_MAX_ROWS = 500;

// ---------------------------------------------------------------- DOM helpers

const SVG_NS = 'http://www.w3.org/2000/svg';

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if ((k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') && !(el instanceof SVGElement)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function appendKids(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

/** `h('div', {class: 'x', 'data-testid': 'y'}, child, ...)` */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  return appendKids(el, kids);
}

function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  return appendKids(el, kids);
}

function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
function replace(el, ...kids) { clear(el); return appendKids(el, kids); }

// ---------------------------------------------------------------- formatting

/** Milliseconds since the epoch, with the microseconds of an RFC 3339 time kept as a fraction. */
function parseTime(value) {
  if (value == null || value === '') return NaN;
  if (typeof value === 'number') return value;
  const text = String(value);
  const m = /^(.*T\d\d:\d\d:\d\d)(\.(\d+))?(.*)$/.exec(text);
  if (!m) return Date.parse(text);
  const base = Date.parse(m[1] + (m[4] || 'Z'));
  if (!m[3]) return base;
  return base + Number(`0.${m[3]}`) * 1000;
}

function fmtDuration(ms) {
  if (ms == null || !Number.isFinite(Number(ms))) return '—';
  ms = Number(ms);
  const neg = ms < 0;
  ms = Math.abs(ms);
  let out;
  if (ms < 1) out = `${ms.toFixed(2)} ms`;
  else if (ms < 10) out = `${ms.toFixed(1)} ms`;
  else if (ms < 1000) out = `${Math.round(ms)} ms`;
  else if (ms < 10_000) out = `${(ms / 1000).toFixed(2)} s`;
  else if (ms < 60_000) out = `${(ms / 1000).toFixed(1)} s`;
  else if (ms < 3_600_000) out = `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  else out = `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
  return neg ? `-${out}` : out;
}

function fmtSeconds(ms) {
  if (ms == null || !Number.isFinite(Number(ms))) return '—';
  const sec = Number(ms) / 1000;
  return sec < 10 ? `${sec.toFixed(1)} s` : sec < 120 ? `${Math.round(sec)} s` : fmtDuration(ms);
}

function fmtAgo(iso) {
  const t = parseTime(iso);
  if (!Number.isFinite(t)) return '—';
  const d = Date.now() - t;
  if (d < 1500) return 'just now';
  if (d < 60_000) return `${Math.round(d / 1000)} s ago`;
  if (d < 3_600_000) return `${Math.round(d / 60_000)} min ago`;
  if (d < 86_400_000) return `${Math.round(d / 3_600_000)} h ago`;
  return new Date(t).toLocaleDateString();
}

function fmtClock(iso) {
  const t = parseTime(iso);
  if (!Number.isFinite(t)) return iso == null ? '—' : String(iso);
  const d = new Date(t);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function fmtDateTime(iso) {
  const t = parseTime(iso);
  if (!Number.isFinite(t)) return iso == null ? '—' : String(iso);
  const d = new Date(t);
  return `${d.toLocaleDateString()} ${fmtClock(iso)}`;
}

function fmtMoney(minor) {
  if (minor == null || !Number.isFinite(Number(minor))) return '—';
  return (Number(minor) / 100).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function fmtNumber(n, digits = 0) {
  if (n == null || !Number.isFinite(Number(n))) return '—';
  return Number(n).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function shortId(id) {
  if (!id) return '—';
  const text = String(id);
  return text.length > 13 ? `${text.slice(0, 8)}…${text.slice(-4)}` : text;
}

function timeEl(iso, text) {
  return h('time', { datetime: iso || '', title: iso || '' }, text ?? fmtAgo(iso));
}

function statusBadge(status, large = false) {
  const st = status ? String(status).toUpperCase() : '—';
  return h('span', { class: `badge status st-${st}${large ? ' large' : ''}`, 'data-testid': 'status-badge', 'data-status': st }, st);
}

function svcEl(service) {
  const name = service || 'other';
  return h('span', { class: 'svc', style: `--svc-color: ${SERVICE_COLORS[name] || SERVICE_COLORS.other}` }, name);
}

/** `credit+inventory` (or an array) as service chips. */
function svcList(value) {
  const names = Array.isArray(value) ? value : String(value || '').split('+').filter(Boolean);
  return h('span', { class: 'svc-list' }, names.length ? names.map(svcEl) : svcEl(null));
}

/** The dead letters an entry of the stuck list names: `dead_letters` or `dead_letter_id`. */
function parkedOf(o) {
  if (Array.isArray(o.dead_letters)) return o.dead_letters.map((d) => (typeof d === 'string' ? d : d?.id)).filter(Boolean);
  return o.dead_letter_id ? [o.dead_letter_id] : [];
}

/** Kafka headers: `[[name, value], ...]` or an object, as a table. */
function headersEl(headers) {
  const pairs = Array.isArray(headers) ? headers.map((p) => (Array.isArray(p) ? p : [p?.key ?? p?.name, p?.value])) : Object.entries(headers || {});
  return h('table', { class: 'kv', 'data-testid': 'dl-headers' }, h('tbody', {}, pairs.map(([k, v]) => h('tr', {},
    h('th', { class: 'mono', style: 'font-weight:500;font-size:12px' }, String(k)), h('td', { class: 'mono', style: 'font-size:12px' }, v == null ? h('span', { class: 'faint' }, 'null') : String(v))))));
}

function subjectEl(subject) {
  const levels = String(subject || '').split('/');
  const out = h('span', { class: 'subject-text', title: subject || '' });
  levels.forEach((lvl, i) => {
    if (i > 0) out.append(h('span', { class: 'sep' }, '/'), h('wbr'));
    out.append(h('span', { class: i < 2 ? `lvl${i}` : '' }, lvl));
  });
  return out;
}

function orderLink(id, text) {
  if (!id) return h('span', { class: 'faint' }, '—');
  return h('a', { href: `#/orders/${encodeURIComponent(id)}`, class: 'mono', title: id, 'data-testid': 'order-link', 'data-order-id': id }, text ?? shortId(id));
}

/** Pretty JSON, syntax coloured, as a `<pre>`. */
function jsonEl(value, testid) {
  const pre = h('pre', { class: 'json', 'data-testid': testid || null });
  if (typeof value === 'string') {
    try { value = JSON.parse(value); } catch { pre.textContent = value; return pre; }
  }
  const text = JSON.stringify(value, null, 2) ?? 'null';
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false)\b|\bnull\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    let cls = 'n';
    if (m[1]) cls = m[2] ? 'k' : 's';
    else if (m[3]) cls = 'b';
    else if (m[0] === 'null') cls = 'z';
    pre.append(h('span', { class: cls }, m[1] && m[2] ? m[1] : m[0]));
    if (m[1] && m[2]) pre.append(m[2]);
    last = m.index + m[0].length;
  }
  if (last < text.length) pre.append(text.slice(last));
  return pre;
}

// ---------------------------------------------------------------- storage

const store = {
  get(key) { try { return localStorage.getItem(key) || ''; } catch { return ''; } },
  set(key, value) { try { if (value) localStorage.setItem(key, value); else localStorage.removeItem(key); } catch { /* private mode */ } },
};

// ---------------------------------------------------------------- toasts

function toast(kind, text, ms = 5000) {
  const area = document.getElementById('toasts');
  if (!area) return;
  const el = h('div', { class: `alert ${kind}`, 'data-testid': 'toast', role: 'status' }, h('div', {}, text));
  area.append(el);
  setTimeout(() => el.remove(), ms);
}

// ---------------------------------------------------------------- modals

/**
 * A small modal form. Resolves to the values of its inputs (an object keyed by
 * name) when confirmed, or null when cancelled.
 */
function modal({ title, text, note, fields = [], confirm = 'OK', danger = false, testid = 'modal', extra = [] }) {
  return new Promise((resolve) => {
    const inputs = fields.map((f) => {
      const input = f.multiline
        ? h('textarea', { name: f.name, rows: 3, placeholder: f.placeholder || '', required: !!f.required, maxlength: f.maxlength || null, 'data-testid': f.testid || `${testid}-${f.name}` })
        : h('input', { name: f.name, type: f.type || 'text', placeholder: f.placeholder || '', required: !!f.required, autocomplete: 'off', 'data-testid': f.testid || `${testid}-${f.name}` });
      input.value = f.value || '';
      return { f, input };
    });
    let done = false;
    const finish = (value) => {
      if (done) return;
      done = true;
      try { dialog.close(); } catch { /* closed */ }
      dialog.remove();
      resolve(value);
    };
    const form = h('form', { method: 'dialog', onsubmit: (e) => {
      e.preventDefault();
      finish(Object.fromEntries(inputs.map(({ f, input }) => [f.name, input.value.trim()])));
    } },
      h('h2', {}, title),
      note ? h('div', { class: 'alert warn', 'data-testid': `${testid}-note` }, note) : null,
      text ? h('div', { class: 'muted' }, text) : null,
      inputs.map(({ f, input }) => h('label', { class: 'field' }, f.label, input)),
      h('div', { class: 'actions' },
        extra.map((x) => h('button', { type: 'button', 'data-testid': x.testid, onclick: () => finish(x.value) }, x.label)),
        h('button', { type: 'button', 'data-testid': `${testid}-cancel`, onclick: () => finish(null) }, 'Cancel'),
        h('button', { type: 'submit', class: danger ? 'danger' : 'primary', 'data-testid': `${testid}-confirm` }, confirm)));
    const dialog = h('dialog', { class: 'modal', 'data-testid': testid }, form);
    dialog.addEventListener('cancel', (e) => { e.preventDefault(); finish(null); });
    document.body.append(dialog);
    dialog.showModal();
    (inputs[0]?.input || dialog.querySelector('button[type=submit]')).focus();
  });
}

let tokenPrompt = null;

/** Asks for the operator token (or an API key) once, even when several requests answered 401. */
function askToken(which, reason) {
  if (tokenPrompt) return tokenPrompt;
  const operator = which === 'operator';
  tokenPrompt = modal({
    title: operator ? 'Operator token' : 'API key',
    note: reason ? `The server answered 401: ${reason}` : null,
    text: (operator
      ? 'Dead-letter actions need the operator token (UDDERS_OPERATOR_TOKEN). It is kept in this browser only.'
      : 'Placing orders needs an API key. It is kept in this browser only.'),
    fields: [{ name: 'token', label: operator ? 'Token' : 'API key', type: 'password', value: store.get(operator ? LS.operator : LS.apiKey) }],
    confirm: 'Save and retry',
    testid: operator ? 'token-modal' : 'apikey-modal',
  }).then((values) => {
    tokenPrompt = null;
    if (!values || !values.token) return null;
    store.set(operator ? LS.operator : LS.apiKey, values.token);
    updateTokenButton();
    return values.token;
  });
  return tokenPrompt;
}

function updateTokenButton() {
  const button = document.querySelector('[data-testid="token-button"]');
  if (!button) return;
  const set = !!store.get(LS.operator);
  button.classList.toggle('set', set);
  button.title = set ? 'Operator token set (click to change)' : 'Set the operator token for dead-letter actions';
  const label = button.querySelector('.label');
  if (label) label.textContent = set ? 'Operator token ✓' : 'Operator token';
}

async function editToken() {
  const values = await modal({
    title: 'Operator token',
    text: 'Sent as "Authorization: Bearer …" with dead-letter actions. Kept in this browser (localStorage).',
    fields: [{ name: 'token', label: 'Token', type: 'password', value: store.get(LS.operator) }],
    confirm: 'Save',
    testid: 'token-modal',
    extra: store.get(LS.operator) ? [{ label: 'Forget', value: { token: '' }, testid: 'token-modal-forget' }] : [],
  });
  if (values == null) return;
  store.set(LS.operator, values.token);
  updateTokenButton();
  toast(values.token ? 'ok' : 'info', values.token ? 'Operator token saved.' : 'Operator token forgotten.', 2500);
}

// ---------------------------------------------------------------- HTTP

class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

function problemText(body, status, statusText) {
  if (body && typeof body === 'object') {
    return body.detail || body.title || body.message || body.error || `${status} ${statusText || ''}`.trim();
  }
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 300);
  return `${status} ${statusText || ''}`.trim();
}

/**
 * One call to the API. `auth: 'operator'` sends the operator token and asks
 * for it when the answer is 401 (then retries); `auth: 'apikey'` does the same
 * with the API key. Throws ApiError with the problem's `detail`.
 */
async function request(path, { method = 'GET', json, auth = null, signal, headers: extra = {} } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { accept: 'application/json, application/problem+json', ...extra };
    if (json !== undefined) headers['content-type'] = 'application/json';
    const token = auth === 'operator' ? store.get(LS.operator) : auth === 'apikey' ? store.get(LS.apiKey) : '';
    if (token) headers.authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(path, { method, headers, body: json !== undefined ? JSON.stringify(json) : undefined, signal, cache: 'no-store' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, `The console cannot reach the server (${e.message}).`, null);
    }
    const text = await res.text();
    let body = null;
    if (text) { try { body = JSON.parse(text); } catch { body = text; } }
    if (res.status === 401 && auth && attempt < 3) {
      const got = await askToken(auth, problemText(body, res.status, res.statusText));
      if (got) continue;
    }
    if (!res.ok) throw new ApiError(res.status, problemText(body, res.status, res.statusText), body);
    return { status: res.status, body, headers: res.headers };
  }
}

async function getJSON(path, opts) { return (await request(path, opts)).body; }

function nextLink(headers) {
  const link = headers.get('link');
  if (!link) return null;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /rel\s*=\s*"?next"?/i.test(m[2])) return m[1];
  }
  return null;
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') u.set(k, v);
  const text = u.toString();
  return text ? `?${text}` : '';
}

let accessInfo = { operator_token_required: true, api_keys_required: false };
const accessLoaded = getJSON('/console/access')
  .then((a) => { if (a && typeof a === 'object') accessInfo = { ...accessInfo, ...a }; return accessInfo; })
  .catch(() => accessInfo);

// ---------------------------------------------------------------- live (SSE)

const liveListeners = new Set();

/**
 * Subscribes to `GET /live?pattern=…`. Calls `onEvent(data)` for each event
 * and `onState('on'|'off')`; reconnects after errors. Returns a close function.
 */
function openLive(pattern, onEvent, onState = () => {}) {
  let es = null;
  let timer = null;
  let closed = false;
  let backoff = 1000;
  const connect = () => {
    if (closed) return;
    try { es = new EventSource(`/live?pattern=${encodeURIComponent(pattern)}`); } catch { schedule(); return; }
    let opened = false;
    es.addEventListener('open', () => { opened = true; backoff = 1000; onState('on'); });
    const handle = (msg) => {
      let data = null;
      try { data = JSON.parse(msg.data); } catch { return; }
      if (!opened) { opened = true; onState('on'); }
      if (data && typeof data === 'object') onEvent(data);
    };
    es.addEventListener('event', handle);
    es.addEventListener('message', handle);
    // The server fell behind and skipped events: say how many.
    es.addEventListener('lagged', (msg) => onEvent({ __lagged: Number(msg.data) || 1 }));
    es.addEventListener('error', () => {
      opened = false;
      onState('off');
      if (es && es.readyState === EventSource.CLOSED) { es = null; schedule(); }
    });
  };
  const schedule = () => {
    if (closed || timer) return;
    timer = setTimeout(() => { timer = null; connect(); }, backoff);
    backoff = Math.min(backoff * 2, 10_000);
  };
  connect();
  const close = () => { closed = true; clearTimeout(timer); if (es) es.close(); liveListeners.delete(close); };
  liveListeners.add(close);
  return close;
}

function liveIndicator() {
  const el = h('span', { class: 'live', 'data-testid': 'live-indicator', title: 'Server-sent events from /live' }, h('span', { class: 'pulse' }), h('span', { class: 'text' }, 'connecting'));
  el.set = (state) => {
    el.classList.toggle('on', state === 'on');
    el.classList.toggle('off', state !== 'on');
    el.dataset.state = state;
    el.querySelector('.text').textContent = state === 'on' ? 'live' : state === 'paused' ? 'paused' : 'reconnecting';
  };
  return el;
}

/**
 * Runs `fn` at most once per `interval` ms, never two at a time; a call while
 * one runs schedules one more afterwards.
 */
function refresher(fn, interval = 500) {
  let running = false;
  let pending = false;
  let last = 0;
  let timer = null;
  let dead = false;
  const run = async () => {
    timer = null;
    if (dead) return;
    running = true;
    pending = false;
    last = Date.now();
    try { await fn(); } catch (e) { if (e?.name !== 'AbortError') console.warn(e); }
    running = false;
    if (pending) trigger();
  };
  const trigger = () => {
    if (dead) return;
    if (running) { pending = true; return; }
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + interval - Date.now()));
  };
  trigger.stop = () => { dead = true; clearTimeout(timer); };
  return trigger;
}

// ---------------------------------------------------------------- timeline helpers

function levels(subject) { return String(subject || '').split('/'); }
function nameOf(subject) { const l = levels(subject); return l.length > 1 ? `${l[0]}/${l[1]}` : String(subject || '?'); }

function laneOf(entry) {
  const src = String(entry.source || '');
  const m = /\/udders\/([a-z]+)/.exec(src);
  if (m && SERVICES.includes(m[1])) return m[1];
  const last = src.split('/').filter(Boolean).pop();
  if (SERVICES.includes(last)) return last;
  return PUBLISHER_OF[nameOf(entry.subject)] || 'other';
}

function kindOf(entry) {
  const k = String(entry.kind || '').toLowerCase();
  if (k === 'step' || k === 'refusal' || k === 'compensation') return k;
  const action = levels(entry.subject)[1] || '';
  if (['released', 'refunded'].includes(action)) return 'compensation';
  if (['invalid', 'rejected', 'declined', 'failed', 'expired', 'cancelled'].includes(action)) return 'refusal';
  return 'step';
}

/** Timeline entries with their time, lane, kind, cause and delta. */
function analyseTimeline(timeline) {
  const entries = (Array.isArray(timeline) ? timeline : []).map((e, idx) => ({
    ...e, idx, t: parseTime(e.time), lane: laneOf(e), kindName: kindOf(e), name: nameOf(e.subject),
  }));
  const byId = new Map(entries.filter((e) => e.event_id).map((e) => [e.event_id, e]));
  const sorted = [...entries].sort((a, b) => ((a.t || 0) - (b.t || 0)) || (a.idx - b.idx));
  sorted.forEach((e, i) => {
    e.order = i;
    e.cause = e.causation_id && e.causation_id !== e.event_id ? byId.get(e.causation_id) || null : null;
    const prev = i > 0 ? sorted[i - 1] : null;
    const from = e.cause || prev;
    e.deltaFrom = e.cause ? 'cause' : prev ? 'previous' : null;
    e.delta = from && Number.isFinite(e.t) && Number.isFinite(from.t) ? e.t - from.t : null;
    e.offset = Number.isFinite(e.t) && Number.isFinite(sorted[0].t) ? e.t - sorted[0].t : null;
  });
  return { entries, sorted, byId };
}

// ---------------------------------------------------------------- router

const view = document.getElementById('view');
let cleanup = null;

const routes = [
  [/^\/?$/, 'board', (m, q) => pageBoard(q)],
  [/^\/orders\/(.+)$/, 'board', (m, q) => pageOrder(decodeURIComponent(m[1]), q)],
  [/^\/stuck$/, 'stuck', (m, q) => pageStuck(q)],
  [/^\/dead-letters$/, 'dead-letters', (m, q) => pageDeadLetters(q)],
  [/^\/portal$/, 'portal', (m, q) => pagePortal(q)],
  [/^\/tap$/, 'tap', (m, q) => pageTap(q)],
  [/^\/place$/, 'place', (m, q) => pagePlace(q)],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  return { path, query: new URLSearchParams(query) };
}

/** Writes page state into the hash without re-rendering the page. */
function setHashQuery(path, params) {
  const hash = `#${path}${qs(params)}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

function route() {
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  for (const close of [...liveListeners]) close();
  document.querySelectorAll('dialog.modal').forEach((d) => d.remove());
  tokenPrompt = null;
  const { path, query } = parseHash();
  document.querySelector('.topbar')?.classList.remove('open');
  for (const [re, nav, page] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    document.querySelectorAll('.nav a').forEach((a) => a.classList.toggle('active', a.dataset.route === nav));
    clear(view);
    window.scrollTo(0, 0);
    const page$ = page(m, query);
    view.append(page$.el);
    cleanup = page$.cleanup || null;
    return;
  }
  clear(view).append(h('div', { class: 'card empty' }, 'No such page. ', h('a', { href: '#/' }, 'Back to the orders.')));
}

// ---------------------------------------------------------------- page: board

function pageBoard(query) {
  const filters = {
    status: (query.get('status') || '').toUpperCase(),
    country: query.get('country') || '',
    channel: query.get('channel') || '',
    customer: query.get('customer') || '',
    limit: query.get('limit') || '25',
  };
  const paging = { stack: [], current: null, next: null };
  const seen = new Set();
  let firstLoad = true;

  const indicator = liveIndicator();
  const statusCards = h('div', { class: 'status-cards', 'data-testid': 'status-cards' });
  const metrics = h('div', { class: 'metrics', 'data-testid': 'metrics' });
  const tbody = h('tbody', { 'data-testid': 'orders-rows' });
  const listInfo = h('span', { class: 'muted', 'data-testid': 'page-info' });
  const prevBtn = h('button', { type: 'button', 'data-testid': 'prev-page', onclick: () => {
    if (!paging.stack.length) return;
    paging.current = paging.stack.pop();
    loadList();
  } }, '← Previous');
  const nextBtn = h('button', { type: 'button', 'data-testid': 'next-page', onclick: () => {
    if (!paging.next) return;
    paging.stack.push(paging.current);
    paging.current = paging.next;
    loadList();
  } }, 'Next page →');
  const listError = h('div', { class: 'hidden', 'data-testid': 'orders-error' });

  const sel = (name, options, label, testid) => {
    const select = h('select', { 'data-testid': testid, onchange: () => { filters[name] = select.value; resetPaging(); } },
      h('option', { value: '' }, `All ${label}`),
      options.map((o) => h('option', { value: o }, o)));
    select.value = filters[name];
    return select;
  };
  const statusSel = sel('status', STATUSES, 'statuses', 'filter-status');
  const countrySel = sel('country', COUNTRIES, 'countries', 'filter-country');
  const channelSel = sel('channel', CHANNELS, 'channels', 'filter-channel');
  let customerTimer = null;
  const customerInput = h('input', { type: 'search', placeholder: 'cust-42', value: filters.customer, 'data-testid': 'filter-customer', oninput: () => {
    clearTimeout(customerTimer);
    customerTimer = setTimeout(() => { filters.customer = customerInput.value.trim(); resetPaging(); }, 350);
  } });
  const limitSel = h('select', { 'data-testid': 'page-size', onchange: () => { filters.limit = limitSel.value; resetPaging(); } },
    ['10', '25', '50', '100'].map((n) => h('option', { value: n }, `${n} per page`)));
  limitSel.value = filters.limit;
  const jumpInput = h('input', { type: 'search', class: 'mono', placeholder: 'order id', 'data-testid': 'jump-order-id' });
  const jumpForm = h('form', { class: 'row', style: 'gap:6px;flex-wrap:nowrap', onsubmit: (e) => {
    e.preventDefault();
    const id = jumpInput.value.trim();
    if (id) location.hash = `#/orders/${encodeURIComponent(id)}`;
  } }, jumpInput, h('button', { type: 'submit', 'data-testid': 'jump-order-go' }, 'Open'));

  function resetPaging() {
    paging.stack = [];
    paging.current = null;
    setHashQuery('/', { status: filters.status, country: filters.country, channel: filters.channel, customer: filters.customer, limit: filters.limit === '25' ? '' : filters.limit });
    statusSel.value = filters.status;
    renderCards(lastSummary);
    loadList();
  }

  let lastSummary = null;
  function renderCards(summary) {
    const by = (summary && (summary.by_status || summary.statuses)) || {};
    const total = summary?.total ?? Object.values(by).reduce((a, b) => a + Number(b || 0), 0);
    const card = (status, label, value) => h('button', {
      type: 'button', class: `stat-card${filters.status === status ? ' selected' : ''}`,
      style: status ? `--c: var(--st-${status})` : '--c: var(--accent)',
      'data-testid': status ? `count-${status}` : 'count-total', 'data-count': String(value ?? 0),
      title: status ? `Show ${status} orders` : 'Show every order',
      onclick: () => { filters.status = filters.status === status ? '' : status; resetPaging(); },
    }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, fmtNumber(value ?? 0)));
    replace(statusCards, card('', 'All orders', total), STATUSES.map((st) => card(st, st, Number(by[st] || 0))));
  }

  function renderMetrics(summary) {
    const window = summary?.window_secs ?? 60;
    const m = (label, value, unit, testid, title) => h('div', { class: 'metric', 'data-testid': testid, title: title || '' },
      h('div', { class: 'label' }, label), h('div', { class: 'value' }, value, unit ? h('small', {}, unit) : null));
    const ms = (v) => (v == null || !Number.isFinite(Number(v)) ? '—' : fmtDuration(Number(v)));
    replace(metrics,
      m('Completed / s', summary?.completed_per_sec == null ? '—' : fmtNumber(summary.completed_per_sec, 2), '/s', 'metric-completed', `Over the last ${window} s`),
      m(`p50 POST → terminal`, ms(summary?.p50_ms), null, 'metric-p50', `Median time from POST /orders to a terminal status, last ${window} s`),
      m(`p99 POST → terminal`, ms(summary?.p99_ms), null, 'metric-p99', `99th percentile, last ${window} s`),
      endedMetric(summary, window));
  }

  function endedMetric(summary, window) {
    const ended = summary?.ended && typeof summary.ended === 'object' ? summary.ended : null;
    const n = ended ? Object.values(ended).reduce((x, y) => x + Number(y || 0), 0) : null;
    const title = ended ? Object.entries(ended).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none' : 'The summary covers the sagas that ended in this window';
    return h('div', { class: 'metric', 'data-testid': 'metric-ended', title },
      h('div', { class: 'label' }, `Ended, last ${fmtNumber(window)} s`),
      h('div', { class: 'value' }, n == null ? '—' : fmtNumber(n),
        ended && Number(ended.REJECTED || 0) ? h('small', { style: 'color:var(--bad)' }, `${fmtNumber(ended.REJECTED)} rejected`) : null));
  }

  async function loadSummary() {
    let summary;
    try { summary = await getJSON('/console/summary'); } catch (e) {
      if (e.status !== 404 && e.status !== 405) throw e;
      summary = await getJSON('/orders/stats');
    }
    lastSummary = summary;
    renderCards(summary);
    renderMetrics(summary);
  }

  function firstUrl() {
    return `/orders${qs({ status: filters.status, country: filters.country, channel: filters.channel, customer: filters.customer, limit: filters.limit })}`;
  }

  function withCustomer(url) {
    if (!filters.customer || /[?&]customer=/.test(url)) return url;
    return `${url}${url.includes('?') ? '&' : '?'}customer=${encodeURIComponent(filters.customer)}`;
  }

  async function loadList() {
    const url = paging.current || firstUrl();
    let res;
    try { res = await request(url); } catch (e) {
      replace(listError, h('div', { class: 'alert bad' }, `Cannot list orders: ${e.detail || e.message}`));
      listError.classList.remove('hidden');
      return;
    }
    listError.classList.add('hidden');
    let rows = Array.isArray(res.body) ? res.body : (res.body?.orders || res.body?.items || []);
    if (filters.customer) rows = rows.filter((r) => !r.customer_id || r.customer_id === filters.customer);
    const link = nextLink(res.headers);
    paging.next = link ? withCustomer(link) : null;
    renderRows(rows);
    prevBtn.disabled = paging.stack.length === 0;
    nextBtn.disabled = !paging.next;
    listInfo.textContent = `Page ${paging.stack.length + 1} · ${rows.length} order${rows.length === 1 ? '' : 's'}`;
    firstLoad = false;
  }

  function renderRows(rows) {
    if (!rows.length) {
      replace(tbody, h('tr', {}, h('td', { colspan: 9, class: 'empty' },
        filters.status || filters.country || filters.channel || filters.customer ? 'No order matches these filters.' : 'No orders yet. ',
        h('a', { href: '#/place' }, 'Place one.'))));
      return;
    }
    replace(tbody, rows.map((o) => {
      const fresh = !firstLoad && !seen.has(o.order_id);
      seen.add(o.order_id);
      return h('tr', { class: fresh ? 'flash' : '', 'data-testid': 'order-row', 'data-order-id': o.order_id, 'data-status': o.status },
        h('td', {}, orderLink(o.order_id)),
        h('td', {}, statusBadge(o.status)),
        h('td', { class: 'hide-xs' }, o.customer_id || '—'),
        h('td', { class: 'hide-sm' }, o.channel || '—'),
        h('td', { class: 'hide-sm' }, o.country ? o.country.toUpperCase() : '—'),
        h('td', { class: 'num' }, fmtMoney(o.total)),
        h('td', { class: 'hide-sm' }, o.reason ? h('span', { class: 'ellipsis', title: o.reason }, o.reason) : h('span', { class: 'faint' }, '—')),
        h('td', { class: 'nowrap hide-sm' }, timeEl(o.placed_at)),
        h('td', { class: 'nowrap' }, timeEl(o.updated_at)));
    }));
  }

  const el = h('div', { 'data-testid': 'page-board' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Orders'), indicator, h('span', { class: 'grow' }), jumpForm),
    statusCards,
    metrics,
    h('div', { class: 'card flush', style: 'margin-top:16px' },
      h('div', { class: 'card-head' },
        h('div', { class: 'filters grow' },
          h('label', { class: 'field' }, 'Status', statusSel),
          h('label', { class: 'field' }, 'Country', countrySel),
          h('label', { class: 'field' }, 'Channel', channelSel),
          h('label', { class: 'field wide' }, 'Customer', customerInput),
          h('label', { class: 'field' }, 'Page size', limitSel))),
      listError,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'data', 'data-testid': 'orders-table' },
          h('thead', {}, h('tr', {},
            h('th', {}, 'Order'), h('th', {}, 'Status'), h('th', { class: 'hide-xs' }, 'Customer'), h('th', { class: 'hide-sm' }, 'Channel'),
            h('th', { class: 'hide-sm' }, 'Country'), h('th', { class: 'num' }, 'Total'), h('th', { class: 'hide-sm' }, 'Reason'),
            h('th', { class: 'hide-sm' }, 'Placed'), h('th', {}, 'Updated'))),
          tbody)),
      h('div', { class: 'pager' }, prevBtn, nextBtn, h('span', { class: 'grow' }), listInfo)));

  renderCards(null);
  renderMetrics(null);
  let liveState = 'off';
  const refresh = refresher(async () => { await Promise.allSettled([loadSummary(), loadList()]); }, 500);
  refresh();
  const close = openLive('**', () => refresh(), (st) => { liveState = st; indicator.set(st); });
  // The summary moves with time (rates, windows) and SSE may be down: poll too.
  const poll = setInterval(() => refresh(), 4000);
  const fastPoll = setInterval(() => { if (liveState !== 'on') refresh(); }, 1500);
  const ticker = setInterval(() => {
    el.querySelectorAll('time').forEach((t) => { if (t.getAttribute('datetime')) t.textContent = fmtAgo(t.getAttribute('datetime')); });
  }, 5000);
  return { el, cleanup: () => { close(); refresh.stop(); clearInterval(poll); clearInterval(fastPoll); clearInterval(ticker); } };
}

// ---------------------------------------------------------------- page: order

function pageOrder(id) {
  const el = h('div', { 'data-testid': 'page-order' });
  const order = mountOrder(el, id, {});
  return { el, cleanup: order.close };
}

/**
 * Renders one order into `root` and keeps it fresh (SSE + polling while the
 * saga runs). `onUpdate(order)` is called after each load. Returns {close}.
 */
function mountOrder(root, id, { onUpdate = () => {}, embedded = false } = {}) {
  let data = null;
  let fetchedAt = 0;
  let selected = null;
  let tab = 'swimlane';
  let audit = null;
  let auditError = null;
  let notFound = null;
  let closed = false;

  const indicator = liveIndicator();
  const head = h('div', { class: 'card', 'data-testid': 'order-head' });
  const banners = h('div', { class: 'stack', 'data-testid': 'order-banners' });
  const tabsBar = h('div', { class: 'tabs', role: 'tablist' });
  const body = h('div', { class: 'card-body' });
  const main = h('div', { class: 'card flush' }, tabsBar, body);
  const content = h('div', { class: 'stack' }, head, banners, main);
  replace(root, embedded ? null : h('div', { class: 'page-head' },
    h('a', { href: '#/', class: 'muted' }, '← Orders'), h('span', { class: 'grow' }), indicator), content);

  const tabs = [['swimlane', 'Swimlane'], ['events', 'Events'], ['audit', 'Audit']];
  function renderTabs() {
    replace(tabsBar, tabs.map(([key, label]) => h('button', {
      type: 'button', role: 'tab', class: tab === key ? 'active' : '', 'data-testid': `tab-${key}`,
      onclick: () => { tab = key; renderTabs(); renderBody(); if (key === 'audit') loadAudit(); },
    }, label, key === 'events' && data ? h('span', { class: 'chip', style: 'margin-left:6px' }, String((data.timeline || []).length)) : null)));
  }

  async function load() {
    try {
      data = await getJSON(`/orders/${encodeURIComponent(id)}`);
      fetchedAt = Date.now();
      notFound = null;
    } catch (e) {
      if (e.status === 404) { notFound = e.detail || `No order ${id}.`; data = null; }
      else { toastOnce(`Cannot load the order: ${e.detail || e.message}`); return; }
    }
    if (closed) return;
    render();
    if (tab === 'audit') loadAudit();
    if (data) onUpdate(data);
  }

  let lastToast = 0;
  function toastOnce(text) { if (Date.now() - lastToast > 10_000) { lastToast = Date.now(); toast('bad', text); } }

  async function loadAudit() {
    try {
      const body = await getJSON(`/orders/${encodeURIComponent(id)}/events`);
      audit = Array.isArray(body) ? body : body?.events || [];
      auditError = null;
    } catch (e) { auditError = e.detail || e.message; }
    if (!closed && tab === 'audit') renderBody();
  }

  function render() {
    if (notFound) {
      replace(head, h('div', { class: 'alert bad', 'data-testid': 'order-not-found' }, h('div', {}, h('div', { class: 'alert-title' }, 'Order not found'), notFound)));
      clear(banners);
      main.classList.add('hidden');
      return;
    }
    main.classList.remove('hidden');
    renderHead();
    renderBanners();
    renderTabs();
    renderBody();
  }

  function renderHead() {
    const o = data;
    const fact = (k, v, testid) => h('div', { class: 'fact', 'data-testid': testid || null }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v ?? '—'));
    const items = Array.isArray(o.items) && o.items.length
      ? h('ul', { class: 'items' }, o.items.map((i) => h('li', {}, `${i.quantity ?? '?'} × ${i.flavor ?? '?'}`, i.unit_price != null ? h('span', { class: 'muted' }, ` @ ${fmtMoney(i.unit_price)}`) : null)))
      : '—';
    const terminal = TERMINAL.has(String(o.status));
    const dur = terminal ? parseTime(o.updated_at) - parseTime(o.placed_at) : null;
    replace(head,
      h('div', { class: 'order-head' },
        h('h1', { 'data-testid': 'order-id' }, o.order_id || id),
        statusBadge(o.status, true),
        embedded ? h('a', { href: `#/orders/${encodeURIComponent(o.order_id || id)}`, 'data-testid': 'open-order-page' }, 'Open order page →') : null),
      o.reason ? h('div', { class: 'alert bad', style: 'margin-top:12px', 'data-testid': 'order-reason' }, h('div', {}, h('span', { class: 'alert-title' }, 'Reason: '), o.reason)) : null,
      h('div', { class: 'facts' },
        fact('Customer', o.customer_id, 'fact-customer'),
        fact('Total', fmtMoney(o.total), 'fact-total'),
        fact('Channel · country', `${o.channel || '—'} · ${(o.country || '—').toUpperCase()}`),
        fact('Items', items),
        fact('Schema version', o.schema_version),
        fact('Placed', h('span', { title: o.placed_at }, fmtDateTime(o.placed_at))),
        fact('Updated', h('span', { title: o.updated_at }, fmtDateTime(o.updated_at))),
        terminal ? fact('Took', fmtDuration(dur), 'fact-took') : fact('Deadline', h('span', { title: o.deadline }, fmtDateTime(o.deadline))),
        fact('Correlation id', h('span', { class: 'mono' }, o.correlation_id || '—'))));
  }

  function renderBanners() {
    const o = data;
    clear(banners);
    const w = o.waiting;
    if (w && !TERMINAL.has(String(o.status))) {
      const on = Array.isArray(w.on) ? w.on : w.on ? [w.on] : [];
      const since = parseTime(w.since);
      const forMs = Number.isFinite(since) ? Date.now() - since : (Number(w.for_ms) || 0) + (Date.now() - fetchedAt);
      const text = h('span', { 'data-testid': 'waiting-text' }, `Waiting on ${on.join(' and ') || 'the next step'} for ${fmtSeconds(Math.max(0, forMs))}`);
      banners.append(h('div', { class: 'alert warn waiting', 'data-testid': 'waiting' },
        h('span', { class: 'spinner' }),
        h('div', {}, text, w.step ? h('div', { class: 'muted', style: 'font-size:12px' }, 'step ', h('code', {}, w.step)) : null)));
    }
    const dls = Array.isArray(o.dead_letters) ? o.dead_letters : [];
    if (dls.length) {
      banners.append(h('div', { class: 'alert bad', 'data-testid': 'order-dead-letters' },
        h('div', { class: 'grow' },
          h('div', { class: 'alert-title' }, `${dls.length} dead letter${dls.length === 1 ? '' : 's'} for this order`),
          h('ul', {}, dls.map((d) => h('li', { 'data-testid': 'order-dead-letter', 'data-id': d.id },
            h('a', { href: `#/dead-letters${qs({ id: d.id, service: d.service })}` }, h('code', {}, d.id || '?')),
            ` · ${d.service || '?'}`, d.status ? ` · ${d.status}` : '', ' — ', d.reason || 'no reason given',
            d.subject ? h('div', { class: 'mono', style: 'font-size:11.5px;opacity:.8' }, d.subject) : null))),
          h('a', { href: '#/dead-letters', 'data-testid': 'dead-letters-link' }, 'Open the dead letters →'))));
    }
  }

  function renderBody() {
    if (!data) return;
    if (tab === 'swimlane') renderSwimlane();
    else if (tab === 'events') renderEventsTable();
    else renderAudit();
  }

  function renderSwimlane() {
    const tl = analyseTimeline(data.timeline);
    if (selected && !tl.byId.has(selected)) selected = null;
    const panel = h('div', { class: 'event-panel', 'data-testid': 'event-panel' });
    const select = (eventId) => {
      selected = eventId;
      diagram.querySelectorAll('.node').forEach((n) => n.classList.toggle('selected', n.dataset.eventId === eventId));
      diagram.querySelectorAll('.arrow').forEach((a) => a.classList.toggle('hl', a.dataset.from === eventId || a.dataset.to === eventId));
      renderPanel(panel, tl, eventId, select);
    };
    const waiting = data.waiting && !TERMINAL.has(String(data.status)) ? data.waiting : null;
    const diagram = swimlane(tl, select, waiting);
    const legend = h('div', { class: 'legend', style: 'margin-bottom:10px' },
      h('span', {}, h('span', { class: 'sw step' }), 'step'),
      h('span', {}, h('span', { class: 'sw refusal' }), 'refusal'),
      h('span', {}, h('span', { class: 'sw compensation' }), 'compensation'),
      h('span', { class: 'faint' }, '· arrows run from cause to effect (causation id) · x axis: time since the order was placed'));
    replace(body, legend, tl.entries.length ? h('div', { class: 'swimlane-wrap' }, diagram) : h('div', { class: 'empty' }, 'No events yet.'), panel);
    select(selected);
  }

  function renderPanel(panel, tl, eventId, select) {
    const e = eventId ? tl.byId.get(eventId) : null;
    panel.classList.toggle('open', !!e);
    if (!e) {
      const n = (kind) => tl.entries.filter((x) => x.kindName === kind).length;
      replace(panel, h('div', { class: 'row muted' },
        h('b', { style: 'color:var(--text)' }, `${tl.entries.length} event${tl.entries.length === 1 ? '' : 's'}`),
        h('span', {}, `· ${n('refusal')} refusal${n('refusal') === 1 ? '' : 's'}`),
        h('span', {}, `· ${n('compensation')} compensation${n('compensation') === 1 ? '' : 's'}`),
        h('span', {}, `· span ${fmtDuration(tl.sorted.length ? tl.sorted[tl.sorted.length - 1].offset : null)}`),
        h('span', { class: 'faint' }, '— click an event to see its envelope and payload.')));
      return;
    }
    const row = (k, v) => h('tr', {}, h('th', {}, k), h('td', {}, v ?? h('span', { class: 'faint' }, '—')));
    replace(panel,
      h('div', { class: 'row', style: 'margin-bottom:10px' }, h('span', { class: `badge kind-${e.kindName}`, 'data-testid': 'panel-kind' }, e.kindName), svcEl(e.lane),
        h('span', { class: 'subject grow', 'data-testid': 'panel-subject' }, e.subject),
        h('button', { type: 'button', class: 'small ghost', onclick: () => select(null), 'data-testid': 'panel-close', title: 'Close' }, '✕')),
      h('div', { class: 'panel-grid' },
        h('div', {}, h('h3', {}, 'Envelope'),
          h('table', { class: 'kv', 'data-testid': 'panel-envelope' }, h('tbody', {},
            row('event_id', h('code', { 'data-testid': 'panel-event-id' }, e.event_id)),
            row('source', h('code', {}, e.source)),
            row('subject', h('code', {}, e.subject)),
            row('time', h('code', { title: fmtDateTime(e.time) }, e.time)),
            row('causation_id', e.causation_id
              ? (tl.byId.has(e.causation_id)
                ? h('a', { href: 'javascript:void 0', class: 'mono', 'data-testid': 'panel-cause', title: `select ${tl.byId.get(e.causation_id).name}`, onclick: (ev) => { ev.preventDefault(); select(e.causation_id); } }, e.causation_id)
                : h('code', { title: 'not in this timeline' }, e.causation_id))
              : null),
            row('correlation_id', h('code', {}, e.correlation_id || data.correlation_id)),
            row('took', e.delta != null ? `${fmtDuration(e.delta)} after ${e.deltaFrom === 'cause' ? `its cause, ${e.cause.name}` : 'the previous event'}` : 'first event'),
            row('since placed', fmtDuration(e.offset))))),
        h('div', {}, h('h3', {}, 'Payload'),
          e.payload !== undefined ? jsonEl(e.payload, 'panel-payload') : h('p', { class: 'muted' }, 'The timeline carries no payload for this event.'))));
  }

  function renderEventsTable() {
    const tl = analyseTimeline(data.timeline);
    replace(body, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'events-table' },
      h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Time'), h('th', { class: 'num' }, 'Since placed'), h('th', { class: 'num' }, 'Took'),
        h('th', {}, 'Service'), h('th', {}, 'Subject'), h('th', {}, 'Kind'), h('th', {}, 'Caused by'))),
      h('tbody', {}, tl.sorted.map((e) => h('tr', { 'data-testid': 'event-row', 'data-kind': e.kindName },
        h('td', { class: 'faint' }, String(e.order + 1)),
        h('td', { class: 'nowrap mono', title: e.time }, fmtClock(e.time)),
        h('td', { class: 'num nowrap' }, fmtDuration(e.offset)),
        h('td', { class: 'num nowrap' }, e.delta != null ? fmtDuration(e.delta) : '—'),
        h('td', {}, svcEl(e.lane)),
        h('td', {}, subjectEl(e.subject)),
        h('td', {}, h('span', { class: `badge kind-${e.kindName}` }, e.kindName)),
        h('td', {}, e.cause ? h('span', { class: 'mono' }, e.cause.name) : e.causation_id ? h('span', { class: 'faint mono', title: e.causation_id }, shortId(e.causation_id)) : '—')))))));
  }

  function renderAudit() {
    if (auditError) { replace(body, h('div', { class: 'alert bad', 'data-testid': 'audit-error' }, `Cannot read the order's events: ${auditError}`)); return; }
    if (!audit) { replace(body, h('div', { class: 'empty' }, 'Loading the order stream…')); return; }
    if (!audit.length) { replace(body, h('div', { class: 'empty' }, 'The order stream has no events.')); return; }
    const open = new Set([...body.querySelectorAll('tr[data-open="1"]')].map((r) => r.dataset.seq));
    const rows = [];
    for (const ev of audit) {
      const seq = String(ev.sequence ?? ev.version ?? rows.length);
      const detail = h('tr', { class: open.has(seq) ? '' : 'hidden' }, h('td', { colspan: 4 },
        h('div', { class: 'split split-even' },
          h('div', {}, h('h3', {}, 'data'), jsonEl(ev.data ?? ev.payload ?? null)),
          h('div', {}, h('h3', {}, 'metadata'), jsonEl(ev.metadata ?? null)))));
      const toggle = h('button', { type: 'button', class: 'small', 'data-testid': 'audit-toggle', onclick: () => {
        const hidden = detail.classList.toggle('hidden');
        rowEl.dataset.open = hidden ? '0' : '1';
        toggle.textContent = hidden ? 'Show' : 'Hide';
      } }, open.has(seq) ? 'Hide' : 'Show');
      const rowEl = h('tr', { 'data-testid': 'audit-row', 'data-seq': seq, 'data-open': open.has(seq) ? '1' : '0' },
        h('td', { class: 'num' }, seq),
        h('td', {}, h('code', {}, ev.type || ev.event_type || '?')),
        h('td', { class: 'nowrap', title: ev.recorded_at || '' }, fmtDateTime(ev.recorded_at)),
        h('td', { class: 'right' }, toggle));
      rows.push(rowEl, detail);
    }
    replace(body,
      h('p', { class: 'muted' }, 'The order aggregate\'s own stream, as stored (', h('code', {}, `GET /orders/${id}/events`), ').'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'audit-table' },
        h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'Seq'), h('th', {}, 'Type'), h('th', {}, 'Recorded at'), h('th', {}))),
        h('tbody', {}, rows))));
  }

  renderTabs();
  replace(body, h('div', { class: 'empty' }, 'Loading…'));
  const refresh = refresher(load, 400);
  refresh();
  let liveState = 'off';
  const close = openLive('**', (ev) => { if (ev.order_id === id || ev.__lagged) refresh(); }, (st) => { liveState = st; indicator.set(st); });
  const poll = setInterval(() => {
    if (!data || notFound) { if (!notFound) refresh(); return; }
    if (!TERMINAL.has(String(data.status)) || liveState !== 'on') refresh();
  }, 2000);
  const tick = setInterval(() => {
    if (!data) return;
    const w = data.waiting;
    const text = banners.querySelector('[data-testid="waiting-text"]');
    if (w && text) {
      const on = Array.isArray(w.on) ? w.on : w.on ? [w.on] : [];
      const since = parseTime(w.since);
      const forMs = Number.isFinite(since) ? Date.now() - since : (Number(w.for_ms) || 0) + (Date.now() - fetchedAt);
      text.textContent = `Waiting on ${on.join(' and ') || 'the next step'} for ${fmtSeconds(Math.max(0, forMs))}`;
    }
  }, 500);
  return {
    close: () => { closed = true; close(); refresh.stop(); clearInterval(poll); clearInterval(tick); },
    get data() { return data; },
  };
}

/** The swimlane diagram: six lanes, a node per timeline event, an arrow per cause. */
function swimlane(tl, onSelect, waiting = null) {
  const LABEL_W = 116;
  const NODE_W = 150;
  const NODE_H = 46;
  const LANE_H = 70;
  const TOP = 30;
  const MIN_GAP = 26;
  const lanes = [...SERVICES];
  if (tl.entries.some((e) => e.lane === 'other')) lanes.push('other');
  const laneY = (lane) => TOP + lanes.indexOf(lane) * LANE_H;

  // x: time order, spaced by elapsed time on a compressed (log) scale so that
  // events a millisecond apart stay readable and a 30 s wait stays on screen.
  // Events in other lanes a few ms apart whose cause is in an earlier column
  // share a column (parallel steps, such as the two reservations, stack up).
  const PARALLEL_MS = 20; // any two events this close
  const SIBLING_MS = 150; // two effects of the same cause
  const columns = [];
  let x = LABEL_W + 20;
  for (const e of tl.sorted) {
    const col = columns[columns.length - 1];
    const dt = col && Number.isFinite(e.t) && Number.isFinite(col.t) ? e.t - col.t : Infinity;
    const sibling = e.cause && col && col.members.some((m) => m.cause === e.cause);
    const joinable = col && !col.lanes.has(e.lane) && !(e.cause && col.members.includes(e.cause))
      && (dt <= PARALLEL_MS || (sibling && dt <= SIBLING_MS));
    if (joinable) {
      col.lanes.add(e.lane);
      col.members.push(e);
      e.x = col.x + Math.min(24, Math.max(0, dt) * 1.5);
    } else {
      if (col) {
        const last = col.members[col.members.length - 1];
        const dt = Number.isFinite(e.t) && Number.isFinite(last.t) ? Math.max(0, e.t - last.t) : 0;
        x = Math.max(...col.members.map((m) => m.x)) + NODE_W + MIN_GAP + Math.min(110, 24 * Math.log10(1 + dt));
      }
      columns.push({ t: e.t, x, lanes: new Set([e.lane]), members: [e] });
      e.x = x;
    }
    e.column = columns.length - 1;
    e.y = laneY(e.lane) + (LANE_H - NODE_H) / 2;
  }
  x = tl.sorted.length ? Math.max(...tl.sorted.map((e) => e.x)) : x;
  // What the saga waits on: a dashed placeholder in each lane waited on.
  const waitingOn = waiting ? (Array.isArray(waiting.on) ? waiting.on : [waiting.on]).filter((l) => lanes.includes(l)) : [];
  const ghostX = tl.sorted.length ? x + NODE_W + MIN_GAP + 30 : x;
  if (waitingOn.length) x = ghostX;
  const width = Math.max(x + NODE_W + 24, 640);
  const height = TOP + lanes.length * LANE_H + 4;

  // Natural size when it fits; shrunk to fit down to 80 %; wider still, it scrolls.
  const svg = s('svg', { class: 'swimlane', width, height, viewBox: `0 0 ${width} ${height}`, style: `min-width:${Math.round(width * 0.8)}px`, 'data-testid': 'swimlane', 'data-nodes': String(tl.entries.length), role: 'img', 'aria-label': 'Swimlane diagram of the order\'s events' });
  const defs = s('defs', {});
  for (const [kind, color] of [['step', '#8796b0'], ['refusal', '#dc2626'], ['compensation', '#d97706']]) {
    defs.append(s('marker', { id: `arrowhead-${kind}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', fill: color })));
  }
  svg.append(defs);

  lanes.forEach((lane, i) => {
    const y = laneY(lane);
    svg.append(s('g', { class: 'lane', 'data-testid': 'lane', 'data-lane': lane },
      s('rect', { class: `lane-bg${i % 2 ? ' alt' : ''}`, x: 0, y, width, height: LANE_H }),
      s('line', { class: 'lane-line', x1: 0, y1: y + LANE_H, x2: width, y2: y + LANE_H }),
      s('rect', { x: 12, y: y + LANE_H / 2 - 9, width: 4, height: 18, rx: 2, fill: SERVICE_COLORS[lane] || SERVICE_COLORS.other }),
      s('text', { class: 'lane-label', x: 24, y: y + LANE_H / 2 + 4 }, lane)));
  });
  svg.append(s('line', { x1: LABEL_W, y1: TOP, x2: LABEL_W, y2: height, stroke: '#e3e6eb' }));

  // time axis: one tick per column, at its first event
  for (const col of columns) {
    const e = col.members[0];
    const cx = col.x + NODE_W / 2;
    svg.append(s('line', { class: 'axis-tick', x1: cx, y1: TOP - 6, x2: cx, y2: height }));
    svg.append(s('text', { class: 'axis-label', x: cx, y: TOP - 10, 'text-anchor': 'middle' }, e.offset == null ? '' : e.order === 0 ? 't = 0' : `+${fmtDuration(e.offset)}`));
  }

  // arrows, under the nodes
  const arrows = s('g', { class: 'arrows' });
  for (const e of tl.sorted) {
    if (!e.cause) continue;
    const c = e.cause;
    let d;
    const x1 = c.x + NODE_W;
    const y1 = c.y + NODE_H / 2;
    const x2 = e.x;
    const y2 = e.y + NODE_H / 2;
    if (x2 > x1 + 4) {
      const dx = Math.max(24, (x2 - x1) / 2);
      d = Math.abs(y1 - y2) < 1 ? `M${x1},${y1} L${x2 - 2},${y2}` : `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2 - 2},${y2}`;
    } else {
      // effect drawn before (or over) its cause: loop from the bottom of the cause to the top of the effect
      const sx = c.x + NODE_W / 2;
      const sy = c.y + NODE_H;
      const ex = e.x + NODE_W / 2;
      const ey = e.y;
      d = `M${sx},${sy} C${sx},${sy + 40} ${ex},${ey - 40} ${ex},${ey - 2}`;
    }
    arrows.append(s('path', { class: `arrow kind-${e.kindName}`, d, 'marker-end': `url(#arrowhead-${e.kindName})`, 'data-testid': 'arrow', 'data-from': c.event_id, 'data-to': e.event_id }));
  }
  svg.append(arrows);

  for (const lane of waitingOn) {
    const y = laneY(lane) + (LANE_H - NODE_H) / 2;
    const since = parseTime(waiting.since);
    const g = s('g', { class: 'node ghost', transform: `translate(${ghostX},${y})`, 'data-testid': 'waiting-node', 'data-lane': lane },
      s('title', {}, `waiting on ${lane}${waiting.step ? ` (step ${waiting.step})` : ''}`),
      s('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 7 }),
      s('text', { class: 'title', x: 12, y: 19 }, `waiting on ${lane}`),
      s('text', { class: 'sub', x: 12, y: 35 }, Number.isFinite(since) ? `for ${fmtSeconds(Date.now() - since)}` : waiting.for_ms != null ? `for ${fmtSeconds(waiting.for_ms)}` : '…'));
    svg.append(g);
  }
  for (const e of tl.sorted) {
    const sub = e.delta == null ? 'placed' : `${e.deltaFrom === 'cause' ? '+' : 'Δ '}${fmtDuration(e.delta)}${e.deltaFrom === 'cause' ? ' after cause' : ''}`;
    const g = s('g', {
      class: `node kind-${e.kindName}`, transform: `translate(${e.x},${e.y})`, tabindex: 0,
      'data-testid': 'timeline-node', 'data-kind': e.kindName, 'data-event-id': e.event_id || '', 'data-lane': e.lane, 'data-subject': e.subject || '', 'data-name': e.name,
    },
      s('title', {}, `${e.subject}\n${e.time}\n${e.kindName}${e.delta != null ? ` · took ${fmtDuration(e.delta)}` : ''}`),
      s('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 7 }),
      s('rect', { class: 'bar', x: 0, y: 0, width: 4, height: NODE_H, rx: 2 }),
      s('text', { class: 'title', x: 12, y: 19 }, e.name),
      s('text', { class: 'sub', x: 12, y: 35 }, sub));
    g.addEventListener('click', () => onSelect(e.event_id));
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onSelect(e.event_id); } });
    svg.append(g);
  }
  return svg;
}

// ---------------------------------------------------------------- page: stuck

function pageStuck(query) {
  let threshold = query.get('older_than') || '5';
  const thresholdInput = h('input', { type: 'number', min: '0', step: '1', value: threshold, style: 'width:90px', 'data-testid': 'stuck-threshold' });
  const info = h('span', { class: 'muted', 'data-testid': 'stuck-info' });
  const groupsEl = h('div', { class: 'groups', style: 'margin-bottom:16px', 'data-testid': 'stuck-groups' });
  const listEl = h('div', { class: 'stack', 'data-testid': 'stuck-list' });
  const updated = h('span', { class: 'faint', style: 'font-size:12px' });
  const form = h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); apply(); } },
    h('label', { class: 'row', style: 'gap:6px' }, h('span', { class: 'muted' }, 'Waiting longer than'), thresholdInput, h('span', { class: 'muted' }, 'seconds')),
    h('button', { type: 'submit', 'data-testid': 'stuck-apply' }, 'Apply'));
  thresholdInput.addEventListener('change', apply);

  function apply() {
    const v = Math.max(0, Number(thresholdInput.value) || 0);
    threshold = String(v);
    setHashQuery('/stuck', { older_than: threshold === '5' ? '' : threshold });
    refresh();
  }

  async function load() {
    let res;
    try { res = await getJSON(`/orders/stuck?older_than=${encodeURIComponent(threshold)}s`); } catch (e) {
      replace(listEl, h('div', { class: 'alert bad', 'data-testid': 'stuck-error' }, `Cannot read stuck orders: ${e.detail || e.message}`));
      return;
    }
    const groups = Array.isArray(res?.groups) ? res.groups : [];
    const total = res?.total ?? groups.reduce((a, g) => a + Number(g.count || 0), 0);
    info.textContent = `${fmtNumber(total)} order${total === 1 ? '' : 's'} waiting longer than ${fmtSeconds(res?.older_than_ms ?? Number(threshold) * 1000)}`;
    updated.textContent = `updated ${fmtClock(new Date().toISOString())}`;
    groupsEl.classList.toggle('hidden', !groups.length);
    if (!groups.length) {
      replace(groupsEl);
      replace(listEl, h('div', { class: 'card empty', 'data-testid': 'stuck-empty' }, 'No stuck orders. Every saga moved within the threshold.'));
      return;
    }
    replace(groupsEl, groups.map((g) => h('div', { class: 'group-card', style: `--svc-color: ${SERVICE_COLORS[String(g.waiting_on).split('+')[0]] || '#b45309'}`, 'data-testid': 'stuck-group', 'data-waiting-on': g.waiting_on || '' },
      h('div', { class: 'muted', style: 'font-size:11.5px;font-weight:650;text-transform:uppercase;letter-spacing:.04em' }, 'waiting on'),
      h('div', { style: 'margin-top:2px' }, svcList(g.waiting_on)),
      h('div', { class: 'count', 'data-testid': 'stuck-group-count' }, fmtNumber(g.count ?? (g.orders || []).length)),
      g.step ? h('div', { class: 'mono faint', style: 'font-size:11.5px' }, g.step) : null,
      h('div', { class: 'muted', style: 'font-size:12px' }, 'oldest ', h('b', {}, fmtSeconds(g.oldest_age_ms))))));
    replace(listEl, groups.map((g) => h('div', { class: 'card flush' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Waiting on '), svcList(g.waiting_on), g.step ? h('span', { class: 'muted' }, 'step ', h('code', {}, g.step)) : null,
        h('span', { class: 'grow' }), h('span', { class: 'muted' }, `${fmtNumber(g.count)} order${g.count === 1 ? '' : 's'} · oldest ${fmtSeconds(g.oldest_age_ms)}`)),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Order'), h('th', {}, 'Status'), h('th', { class: 'num' }, 'Age'), h('th', { class: 'hide-sm' }, 'Last event'), h('th', {}, 'Dead letter'))),
        h('tbody', {}, (g.orders || []).map((o) => h('tr', { 'data-testid': 'stuck-order', 'data-order-id': o.order_id },
          h('td', {}, orderLink(o.order_id)),
          h('td', {}, statusBadge(o.status)),
          h('td', { class: 'num nowrap' }, fmtSeconds(o.age_ms)),
          h('td', { class: 'hide-sm' }, o.last_subject ? subjectEl(o.last_subject) : '—'),
          h('td', {}, parkedOf(o).length
            ? parkedOf(o).map((id) => h('a', { href: `#/dead-letters${qs({ id, status: 'any' })}`, class: 'badge parked', style: 'margin-right:4px', 'data-testid': 'stuck-dead-letter', 'data-id': id }, `parked in dead letters · ${id}`))
            : h('span', { class: 'faint' }, '—'))))))))));
  }

  const refresh = refresher(load, 300);
  refresh();
  const timer = setInterval(refresh, 2000);
  const el = h('div', { 'data-testid': 'page-stuck' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Stuck orders'), info, h('span', { class: 'grow' }), updated),
    h('div', { class: 'card', style: 'margin-bottom:16px' }, form,
      h('p', { class: 'muted', style: 'margin:8px 0 0;font-size:12.5px' }, 'Orders not yet terminal that were placed longer ago than the threshold, grouped by the services they wait on and the step those have not answered. Refreshed every 2 s.')),
    groupsEl,
    listEl);
  return { el, cleanup: () => { refresh.stop(); clearInterval(timer); } };
}

// ---------------------------------------------------------------- page: dead letters

function pageDeadLetters(query) {
  const filters = { service: query.get('service') || '', status: query.get('status') ?? 'parked', reason: query.get('reason') || '' };
  const focus = query.get('id') || '';
  const expanded = new Set(focus ? [focus] : []);
  const messages = h('div', { 'data-testid': 'dl-messages' });
  const tbody = h('tbody', { 'data-testid': 'dl-rows' });
  const count = h('span', { class: 'muted', 'data-testid': 'dl-count' });
  let rows = [];
  let busy = false;

  const serviceSel = h('select', { 'data-testid': 'dl-filter-service', onchange: () => { filters.service = serviceSel.value; changed(); } },
    h('option', { value: '' }, 'All services'), ALL_SERVICES.map((sv) => h('option', { value: sv }, sv)));
  serviceSel.value = filters.service;
  const statusSel = h('select', { 'data-testid': 'dl-filter-status', onchange: () => { filters.status = statusSel.value; changed(); } },
    h('option', { value: '' }, 'Any status'), ['parked', 'replayed', 'discarded'].map((st) => h('option', { value: st }, st)));
  statusSel.value = filters.status;
  let reasonTimer = null;
  const reasonInput = h('input', { type: 'search', placeholder: 'text in the reason', value: filters.reason, 'data-testid': 'dl-filter-reason', oninput: () => {
    clearTimeout(reasonTimer);
    reasonTimer = setTimeout(() => { filters.reason = reasonInput.value.trim(); changed(); }, 350);
  } });
  const replayAllBtn = h('button', { type: 'button', class: 'primary', 'data-testid': 'dl-replay-all', onclick: replayAll }, 'Replay all matching');

  function changed() {
    setHashQuery('/dead-letters', { service: filters.service, status: filters.status === 'parked' ? '' : filters.status || 'any', reason: filters.reason });
    refresh();
  }

  function say(kind, text) {
    messages.prepend(h('div', { class: `alert ${kind}`, 'data-testid': 'dl-message', 'data-kind': kind },
      h('div', { class: 'grow' }, text), h('button', { type: 'button', class: 'small ghost', onclick: (e) => e.target.closest('.alert').remove() }, '✕')));
    while (messages.children.length > 4) messages.lastChild.remove();
  }

  async function load() {
    const status = filters.status === 'any' ? '' : filters.status;
    let body;
    try { body = await getJSON(`/dead-letters${qs({ service: filters.service, status, reason: filters.reason })}`, { auth: 'operator' }); } catch (e) {
      replace(tbody, h('tr', {}, h('td', { colspan: 10 }, h('div', { class: 'alert bad', 'data-testid': 'dl-error' }, `Cannot list dead letters: ${e.detail || e.message}`))));
      return;
    }
    rows = Array.isArray(body) ? body : body?.dead_letters || body?.items || [];
    if (!busy) render();
  }

  function payloadView(d) {
    const p = d.payload;
    if (p == null) return h('p', { class: 'muted' }, 'No payload kept.');
    if (typeof p === 'string') {
      try { return jsonEl(JSON.parse(p), 'dl-payload'); } catch { return h('pre', { class: 'json', 'data-testid': 'dl-payload' }, p); }
    }
    return jsonEl(p, 'dl-payload');
  }

  function render() {
    count.textContent = `${rows.length} dead letter${rows.length === 1 ? '' : 's'}`;
    replayAllBtn.disabled = !rows.some((d) => (d.status || 'parked') === 'parked');
    if (!rows.length) {
      replace(tbody, h('tr', {}, h('td', { colspan: 10, class: 'empty', 'data-testid': 'dl-empty' }, 'No dead letters match. Records a service could not handle land here.')));
      return;
    }
    const out = [];
    for (const d of rows) {
      const st = d.status || 'parked';
      const open = expanded.has(d.id);
      const detail = h('tr', { class: open ? '' : 'hidden', 'data-testid': 'dl-detail', 'data-id': d.id },
        h('td', { colspan: 10, style: 'background:#fbfcfd' },
          h('div', { class: 'split split-record' },
            h('div', {}, h('h3', {}, 'Payload'), payloadView(d)),
            h('div', {}, h('h3', {}, 'Record'),
              h('table', { class: 'kv' }, h('tbody', {},
                [['id', d.id], ['topic', d.topic], ['partition', d.partition], ['offset', d.offset], ['subject', d.subject], ['order', d.order_id],
                  ['attempts', d.attempts], ['first failed', d.first_failed_at], ['last failed', d.last_failed_at], ['status', st], ['note', d.note]]
                  .map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { class: 'mono', style: 'font-size:12px' }, v == null || v === '' ? '—' : String(v)))))),
              d.headers ? h('div', {}, h('h3', { style: 'margin-top:10px' }, 'Headers'), headersEl(d.headers)) : null))));
      const toggle = h('button', { type: 'button', class: 'small ghost', 'data-testid': 'dl-expand', title: 'Show the payload', onclick: () => {
        if (expanded.has(d.id)) expanded.delete(d.id); else expanded.add(d.id);
        detail.classList.toggle('hidden', !expanded.has(d.id));
        toggle.textContent = expanded.has(d.id) ? '▾' : '▸';
      } }, open ? '▾' : '▸');
      out.push(h('tr', { 'data-testid': 'dl-row', 'data-id': d.id, 'data-service': d.service || '', 'data-status': st, 'data-attempts': String(d.attempts ?? ''), class: d.id === focus ? 'flash' : '' },
        h('td', {}, toggle),
        h('td', { class: 'nowrap' }, h('code', { 'data-testid': 'dl-id' }, d.id), h('div', {}, svcEl(d.service))),
        h('td', { class: 'mono hide-sm', style: 'font-size:12px' }, `${d.topic ?? '?'}`, h('div', { class: 'faint' }, `p${d.partition ?? '?'} @ ${d.offset ?? '?'}`)),
        h('td', { class: 'hide-sm' }, d.subject ? subjectEl(d.subject) : '—', d.order_id ? h('div', {}, orderLink(d.order_id)) : null),
        h('td', { 'data-testid': 'dl-reason', style: 'max-width:320px;word-break:break-word' }, d.reason || '—'),
        h('td', { class: 'num', 'data-testid': 'dl-attempts' }, String(d.attempts ?? '—')),
        h('td', { class: 'nowrap hide-sm', style: 'font-size:12px' }, h('div', { title: d.first_failed_at || '' }, 'first ', fmtAgo(d.first_failed_at)), h('div', { title: d.last_failed_at || '' }, 'last ', fmtAgo(d.last_failed_at))),
        h('td', {}, h('span', { class: `badge ${st}`, 'data-testid': 'dl-status' }, st), d.note ? h('div', { class: 'muted', style: 'font-size:12px;max-width:180px;word-break:break-word', 'data-testid': 'dl-note' }, `“${d.note}”`) : null),
        h('td', { class: 'nowrap' },
          h('button', { type: 'button', class: 'small', 'data-testid': 'dl-replay', disabled: st === 'discarded', onclick: () => replayOne(d) }, 'Replay'),
          ' ',
          h('button', { type: 'button', class: 'small danger', 'data-testid': 'dl-discard', disabled: st !== 'parked', onclick: () => discard(d) }, 'Discard'))));
      out.push(detail);
    }
    replace(tbody, out);
  }

  async function act(fn) {
    busy = true;
    try { await fn(); } finally { busy = false; refresh(); }
  }

  function replayOne(d) {
    return act(async () => {
      try {
        const res = await request(`/dead-letters/${encodeURIComponent(d.id)}/replay`, { method: 'POST', auth: 'operator' });
        say('ok', `Replayed ${d.id}: ${res.body?.status || 'done'}${res.body?.outcome ? ` (${res.body.outcome})` : ''}.`);
      } catch (e) {
        if (e.status === 401) say('bad', `Not replayed (401): ${e.detail}`);
        else say('bad', `Replay of ${d.id} failed${e.status ? ` (${e.status})` : ''}: ${e.detail}`);
      }
    });
  }

  function replayAll() {
    return act(async () => {
      const parked = rows.filter((d) => (d.status || 'parked') === 'parked').length;
      const ok = await modal({
        title: 'Replay all matching',
        text: `Re-deliver every parked dead letter${filters.service ? ` of ${filters.service}` : ''}${filters.reason ? ` whose reason contains “${filters.reason}”` : ''} (${parked} listed).`,
        confirm: 'Replay all', testid: 'replay-all-modal',
      });
      if (!ok) return;
      try {
        const res = await request(`/dead-letters/replay${qs({ service: filters.service, reason: filters.reason })}`, { method: 'POST', auth: 'operator' });
        const b = res.body || {};
        const firstFailure = b.results?.failed?.[0];
        say(b.failed ? 'warn' : 'ok', `Replayed ${b.replayed ?? '?'}, failed again ${b.failed ?? 0}.${firstFailure ? ` First failure: ${firstFailure.id}: ${firstFailure.detail}` : ''}`);
      } catch (e) { say('bad', `Replay all failed${e.status ? ` (${e.status})` : ''}: ${e.detail}`); }
    });
  }

  function discard(d) {
    return act(async () => {
      const values = await modal({
        title: `Discard ${d.id}`, text: 'The record stays listed as discarded with your note; it is never delivered.',
        fields: [{ name: 'note', label: 'Note (required)', multiline: true, required: true, maxlength: 1000, placeholder: 'why it is safe to drop' }],
        confirm: 'Discard', danger: true, testid: 'discard-modal',
      });
      if (!values) return;
      try {
        const res = await request(`/dead-letters/${encodeURIComponent(d.id)}/discard`, { method: 'POST', json: { note: values.note }, auth: 'operator' });
        say('ok', `Discarded ${d.id}: ${res.body?.status || 'done'}.`);
      } catch (e) { say('bad', `Discard of ${d.id} failed${e.status ? ` (${e.status})` : ''}: ${e.detail}`); }
    });
  }

  const refresh = refresher(load, 300);
  refresh();
  const timer = setInterval(() => { if (!busy) refresh(); }, 2000);
  const disabledNote = h('div', {});
  accessLoaded.then((a) => {
    if (a.operator_actions_enabled === false) {
      replace(disabledNote, h('div', { class: 'alert warn', style: 'margin-bottom:12px', 'data-testid': 'dl-actions-disabled' },
        'Operator actions are disabled: this process was started without UDDERS_OPERATOR_TOKEN. The list is read-only.'));
    }
  });
  const el = h('div', { 'data-testid': 'page-dead-letters' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Dead letters'), count, h('span', { class: 'grow' }), replayAllBtn),
    disabledNote,
    messages,
    h('div', { class: 'card flush', style: 'margin-top:12px' },
      h('div', { class: 'card-head' }, h('div', { class: 'filters grow' },
        h('label', { class: 'field' }, 'Service', serviceSel),
        h('label', { class: 'field' }, 'Status', statusSel),
        h('label', { class: 'field wide' }, 'Reason contains', reasonInput))),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'dl-table' },
        h('thead', {}, h('tr', {}, h('th', {}), h('th', {}, 'Id · service'), h('th', { class: 'hide-sm' }, 'Topic'), h('th', { class: 'hide-sm' }, 'Subject · order'),
          h('th', {}, 'Reason'), h('th', { class: 'num' }, 'Attempts'), h('th', { class: 'hide-sm' }, 'Failed'), h('th', {}, 'Status'), h('th', {}))),
        tbody))),
    h('p', { class: 'faint', style: 'margin-top:10px;font-size:12.5px' }, 'Replay and discard need the operator token (header button). Refreshed every 2 s.'));
  return { el, cleanup: () => { refresh.stop(); clearInterval(timer); } };
}

// ---------------------------------------------------------------- page: portal

function pagePortal(query) {
  let catalog = null;
  let live = {};
  let selected = null; // {name, version} or {service}
  let matchedKeys = new Set();
  const graphWrap = h('div', { class: 'portal-graph-wrap', 'data-testid': 'portal-graph' }, h('div', { class: 'empty' }, 'Loading the catalog…'));
  const detail = h('div', { class: 'card', 'data-testid': 'subject-detail' });
  const patternInput = h('input', { type: 'text', placeholder: 'order/valid/*/icecream/**/sg/*', value: query.get('pattern') || '', 'data-testid': 'pattern-input', spellcheck: 'false', autocomplete: 'off' });
  const matchOut = h('div', { 'data-testid': 'match-result' });
  const subsTable = h('div', {});
  let graph = null;

  const key = (ev) => `${ev.name || nameOf(ev.subject)}/${ev.version}`;

  async function loadCatalog() {
    try { catalog = await getJSON('/catalog'); } catch (e) {
      replace(graphWrap, h('div', { class: 'alert bad' }, `Cannot read the catalog: ${e.detail || e.message}`));
      return;
    }
    drawGraph();
    renderSubscriptions();
    renderDetail();
  }

  async function loadLive() {
    try { live = (await getJSON('/catalog/live')) || {}; } catch { return; }
    updateCounts();
    if (selected && !selected.service) renderDetail();
  }

  function events() { return Array.isArray(catalog?.events) ? catalog.events : []; }
  function subscriptions() { return Array.isArray(catalog?.subscriptions) ? catalog.subscriptions : []; }

  function publisherOf(ev) {
    const p = ev.publisher;
    return typeof p === 'string' ? p : p?.service || p?.name || PUBLISHER_OF[ev.name] || 'order';
  }
  function subscribersOf(ev) { return Array.isArray(ev.subscribers) ? ev.subscribers : []; }

  /** Rows: one per domain/action, grouped by domain, versions as chips. */
  function rowsByDomain() {
    const domains = new Map();
    for (const ev of events()) {
      const name = ev.name || nameOf(ev.subject);
      const [domain] = name.split('/');
      if (!domains.has(domain)) domains.set(domain, new Map());
      const actions = domains.get(domain);
      if (!actions.has(name)) actions.set(name, []);
      actions.get(name).push(ev);
    }
    const order = ['order', 'credit', 'inventory', 'payment', 'fulfillment'];
    return [...domains.entries()].sort((a, b) => (order.indexOf(a[0]) + 1 || 99) - (order.indexOf(b[0]) + 1 || 99));
  }

  function drawGraph() {
    const COL1 = 8; const SVC_W = 128; const COL2 = 206; const ROW_W = 300; const COL3 = 594; const SUB_W = 184;
    const ROW_H = 30; const DOMAIN_GAP = 28; const TOP = 34;
    const rows = [];
    let y = TOP;
    const domainTitles = [];
    for (const [domain, actions] of rowsByDomain()) {
      y += DOMAIN_GAP - 6;
      domainTitles.push({ domain, y });
      y += 8;
      for (const [name, evs] of actions) {
        rows.push({ name, evs: evs.sort((a, b) => String(a.version).localeCompare(String(b.version), undefined, { numeric: true })), y });
        y += ROW_H + 4;
      }
    }
    const height = Math.max(y + 20, TOP + ALL_SERVICES.length * 70);
    const width = COL3 + SUB_W + 20;
    const svcY = (i, n, boxH) => TOP + 16 + i * ((height - TOP - 40) / n) + ((height - TOP - 40) / n - boxH) / 2;

    const svg = s('svg', { class: 'portal', width, height, viewBox: `0 0 ${width} ${height}`, 'data-testid': 'portal-svg' });
    svg.append(
      s('text', { class: 'col-title', x: COL1, y: 18 }, 'PUBLISHERS'),
      s('text', { class: 'col-title', x: COL2, y: 18 }, 'SUBJECTS (DOMAIN / ACTION · VERSIONS)'),
      s('text', { class: 'col-title', x: COL3, y: 18 }, 'SUBSCRIBERS'));
    const edges = s('g', {});
    svg.append(edges);

    const subsByService = new Map(ALL_SERVICES.map((sv) => [sv, []]));
    for (const sub of subscriptions()) {
      if (!subsByService.has(sub.service)) subsByService.set(sub.service, []);
      const list = subsByService.get(sub.service);
      if (!list.includes(sub.route)) list.push(sub.route);
    }
    const pubBoxes = new Map();
    const subBoxes = new Map();
    // Publishers: the saga's six. Subscribers: every service, the
    // listeners too.
    SERVICES.forEach((sv, i) => {
      const bh = 40;
      const by = svcY(i, SERVICES.length, bh);
      pubBoxes.set(sv, { x: COL1 + SVC_W, y: by + bh / 2 });
      const g = s('g', { class: 'svc-box', 'data-testid': 'portal-publisher', 'data-service': sv, transform: `translate(${COL1},${by})` },
        s('rect', { width: SVC_W, height: bh, rx: 7 }),
        s('rect', { width: 4, height: bh, rx: 2, fill: SERVICE_COLORS[sv] }),
        s('text', { x: 14, y: 25 }, sv));
      g.addEventListener('click', () => { selected = { service: sv }; highlight(); renderDetail(); });
      svg.append(g);
    });
    ALL_SERVICES.forEach((sv, i) => {
      const routes = subsByService.get(sv) || [];
      const sh = 30;
      const sy = svcY(i, ALL_SERVICES.length, sh + 14);
      subBoxes.set(sv, { x: COL3, y: sy + (sh + 14) / 2 });
      const routesText = routes.join(' · ');
      const sg = s('g', { class: 'svc-box', 'data-testid': 'portal-subscriber', 'data-service': sv, transform: `translate(${COL3},${sy})` },
        s('rect', { width: SUB_W, height: sh + 14, rx: 7 }),
        s('rect', { width: 4, height: sh + 14, rx: 2, fill: SERVICE_COLORS[sv] }),
        s('text', { x: 14, y: 19 }, sv),
        s('text', { class: 'routes', x: 14, y: 35 }, routesText.length > 26 ? `${routesText.slice(0, 25)}…` : routesText),
        s('title', {}, `${sv} routes: ${routesText}`));
      sg.addEventListener('click', () => { selected = { service: sv }; highlight(); renderDetail(); });
      svg.append(sg);
    });

    for (const dt of domainTitles) svg.append(s('text', { class: 'domain-title', x: COL2, y: dt.y }, dt.domain.toUpperCase()));

    const rowEls = [];
    for (const row of rows) {
      const pub = publisherOf(row.evs[0]);
      const g = s('g', { class: 'subj', transform: `translate(${COL2},${row.y})`, 'data-testid': 'portal-subject', 'data-name': row.name, 'data-publisher': pub });
      g.append(s('rect', { class: 'row-bg', width: ROW_W, height: ROW_H, rx: 6 }));
      g.append(s('text', { class: 'name', x: 10, y: 19 }, row.name));
      let vx = 10 + row.name.length * 7.6 + 10;
      for (const ev of row.evs) {
        const vg = s('g', { class: 'ver', transform: `translate(${vx},7)`, 'data-testid': 'portal-version', 'data-key': key(ev) },
          s('rect', { width: 32, height: 16, rx: 4 }), s('text', { x: 16, y: 12, 'text-anchor': 'middle' }, String(ev.version)));
        vg.addEventListener('click', (e) => { e.stopPropagation(); selected = { name: row.name, version: ev.version }; highlight(); renderDetail(); });
        g.append(vg);
        vx += 36;
      }
      const countText = s('text', { class: 'count', x: ROW_W - 10, y: 19, 'text-anchor': 'end', 'data-testid': 'portal-count', 'data-name': row.name }, '');
      g.append(countText);
      g.append(s('title', {}, row.evs.map((ev) => `${ev.subject}: ${ev.summary || ''}`).join('\n')));
      g.addEventListener('click', () => { selected = { name: row.name, version: row.evs[row.evs.length - 1].version }; highlight(); renderDetail(); });
      svg.append(g);
      rowEls.push({ row, g, countText });

      const ry = row.y + ROW_H / 2;
      const pb = pubBoxes.get(pub);
      if (pb) {
        const mid = (pb.x + COL2) / 2;
        edges.append(s('path', { class: 'edge', d: `M${pb.x},${pb.y} C${mid},${pb.y} ${mid},${ry} ${COL2},${ry}`, stroke: SERVICE_COLORS[pub] || '#888', 'data-pub': pub, 'data-name': row.name }));
      }
      const subs = new Set(row.evs.flatMap((ev) => subscribersOf(ev).map((x) => x.service)));
      for (const sv of subs) {
        const sb = subBoxes.get(sv);
        if (!sb) continue;
        const x1 = COL2 + ROW_W;
        const mid = (x1 + sb.x) / 2;
        edges.append(s('path', { class: 'edge', d: `M${x1},${ry} C${mid},${ry} ${mid},${sb.y} ${sb.x},${sb.y}`, stroke: SERVICE_COLORS[sv] || '#888', 'data-sub': sv, 'data-name': row.name }));
      }
    }
    graph = { svg, rowEls };
    replace(graphWrap, svg);
    updateCounts();
    highlight();
  }

  function liveOf(ev) {
    const k = `${ev.name || nameOf(ev.subject)}/${ev.version}`;
    return live?.[k] || null;
  }

  function updateCounts() {
    if (!graph) return;
    for (const { row, countText } of graph.rowEls) {
      let n = 0; let last = null;
      for (const ev of row.evs) {
        const l = liveOf(ev);
        if (!l) continue;
        n += Number(l.count || 0);
        if (l.last_seen && (!last || parseTime(l.last_seen) > parseTime(last))) last = l.last_seen;
      }
      countText.textContent = n ? `${fmtNumber(n)} · ${fmtAgo(last)}` : '0';
      countText.classList.toggle('hot', !!last && Date.now() - parseTime(last) < 5000);
      countText.setAttribute('data-count', String(n));
    }
  }

  function highlight() {
    if (!graph) return;
    const svg = graph.svg;
    const focus = !!selected;
    svg.classList.toggle('focus', focus);
    svg.querySelectorAll('.hl').forEach((x) => x.classList.remove('hl'));
    for (const { row, g } of graph.rowEls) {
      g.classList.toggle('selected', !!selected && selected.name === row.name);
      g.classList.toggle('matched', row.evs.some((ev) => matchedKeys.has(key(ev))));
      g.querySelectorAll('.ver').forEach((v) => v.classList.toggle('active', !!selected && selected.name === row.name && v.dataset.key === `${row.name}/${selected.version}`));
    }
    if (!selected) return;
    if (selected.service) {
      const sv = selected.service;
      svg.querySelectorAll(`.svc-box[data-service="${sv}"]`).forEach((x) => x.classList.add('hl'));
      svg.querySelectorAll(`.edge[data-pub="${sv}"], .edge[data-sub="${sv}"]`).forEach((edge) => {
        edge.classList.add('hl');
        svg.querySelectorAll(`.subj[data-name="${edge.dataset.name}"]`).forEach((x) => x.classList.add('hl'));
      });
    } else {
      svg.querySelectorAll(`.subj[data-name="${selected.name}"]`).forEach((x) => x.classList.add('hl'));
      svg.querySelectorAll(`.edge[data-name="${selected.name}"]`).forEach((edge) => {
        edge.classList.add('hl');
        const sv = edge.dataset.pub || edge.dataset.sub;
        svg.querySelectorAll(`.svc-box[data-service="${sv}"][data-testid="${edge.dataset.pub ? 'portal-publisher' : 'portal-subscriber'}"]`).forEach((x) => x.classList.add('hl'));
      });
    }
  }

  function patternOf(sub) {
    if (sub.pattern) return sub.pattern;
    const found = subscriptions().filter((x) => x.service === sub.service && x.route === sub.route).map((x) => x.pattern);
    return found.join(', ');
  }

  function renderDetail() {
    if (!catalog) { replace(detail, h('div', { class: 'muted' }, '…')); return; }
    if (!selected) {
      replace(detail, h('h2', {}, 'Catalog'),
        h('p', { class: 'muted' }, 'Click a subject to see its schema and subscribers, or a service to see what it publishes and listens to.'),
        h('table', { class: 'kv' }, h('tbody', {},
          h('tr', {}, h('th', {}, 'Event types'), h('td', {}, String(events().length))),
          h('tr', {}, h('th', {}, 'Subscriptions'), h('td', {}, String(subscriptions().length))),
          h('tr', {}, h('th', {}, 'Subject shape'), h('td', {}, h('code', {}, 'domain/action/version/icecream/udders/{product}/{country}/{channel}'))))));
      return;
    }
    if (selected.service) {
      const sv = selected.service;
      const pubs = events().filter((ev) => publisherOf(ev) === sv);
      const subs = subscriptions().filter((x) => x.service === sv);
      replace(detail, h('div', { class: 'row', style: 'margin-bottom:8px' }, h('h2', { style: 'margin:0' }, 'Service'), svcEl(sv), h('span', { class: 'grow' }),
        h('button', { type: 'button', class: 'small ghost', onclick: () => { selected = null; highlight(); renderDetail(); } }, '✕')),
        h('h3', {}, `Publishes (${pubs.length})`),
        h('ul', { class: 'items' }, pubs.map((ev) => h('li', {}, h('code', {}, `${ev.name} ${ev.version}`), ev.topic ? h('span', { class: 'faint' }, ` → ${ev.topic}`) : null))),
        h('h3', { style: 'margin-top:12px' }, `Listens (${subs.length})`),
        h('table', { class: 'kv' }, h('tbody', {}, subs.map((x) => h('tr', {}, h('th', {}, x.route), h('td', {}, h('a', { href: 'javascript:void 0', class: 'mono', onclick: (e) => { e.preventDefault(); patternInput.value = x.pattern; runMatch(); } }, x.pattern)))))));
      return;
    }
    const ev = events().find((x) => (x.name || nameOf(x.subject)) === selected.name && String(x.version) === String(selected.version))
      || events().find((x) => (x.name || nameOf(x.subject)) === selected.name);
    if (!ev) { selected = null; renderDetail(); return; }
    const l = liveOf(ev);
    const row = (k, v) => h('tr', {}, h('th', {}, k), h('td', {}, v ?? '—'));
    replace(detail,
      h('div', { class: 'row', style: 'margin-bottom:8px' }, h('h2', { style: 'margin:0', 'data-testid': 'detail-name' }, `${ev.name || nameOf(ev.subject)}`), h('span', { class: 'chip' }, `v${ev.version}`),
        h('span', { class: 'grow' }), h('button', { type: 'button', class: 'small ghost', onclick: () => { selected = null; highlight(); renderDetail(); } }, '✕')),
      ev.summary ? h('p', {}, ev.summary) : null,
      h('table', { class: 'kv' }, h('tbody', {},
        row('subject', h('code', { 'data-testid': 'detail-subject' }, ev.subject)),
        row('type', h('code', {}, ev.type)),
        row('topic', h('code', {}, ev.topic)),
        row('publisher', svcEl(publisherOf(ev))),
        row('payload', h('code', {}, ev.payload)),
        row('seen', l ? `${fmtNumber(l.count)} · last ${fmtAgo(l.last_seen)}` : 'not yet'))),
      h('h3', { style: 'margin-top:12px' }, `Subscribers (${subscribersOf(ev).length})`),
      h('table', { class: 'data', 'data-testid': 'detail-subscribers' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Service'), h('th', {}, 'Route'), h('th', {}, 'Pattern'))),
        h('tbody', {}, subscribersOf(ev).map((x) => h('tr', {}, h('td', {}, svcEl(x.service)), h('td', { class: 'mono' }, x.route), h('td', { class: 'mono' }, patternOf(x)))))),
      h('h3', { style: 'margin-top:12px' }, 'Payload schema'),
      jsonEl(ev.schema ?? null, 'detail-schema'));
  }

  function renderSubscriptions() {
    const subs = subscriptions();
    replace(subsTable, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'subscriptions-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Service'), h('th', {}, 'Route'), h('th', {}, 'Pattern'))),
      h('tbody', {}, subs.map((x) => h('tr', {},
        h('td', {}, svcEl(x.service)), h('td', { class: 'mono' }, x.route),
        h('td', {}, h('a', { href: 'javascript:void 0', class: 'mono', onclick: (e) => { e.preventDefault(); patternInput.value = x.pattern; runMatch(); window.scrollTo({ top: 0, behavior: 'smooth' }); } }, x.pattern))))))));
  }

  let matchSeq = 0;
  let matchTimer = null;
  async function runMatch() {
    clearTimeout(matchTimer);
    const pattern = patternInput.value.trim();
    setHashQuery('/portal', { pattern });
    const seq = ++matchSeq;
    if (!pattern) { matchedKeys = new Set(); highlight(); replace(matchOut); return; }
    replace(matchOut, h('div', { class: 'muted', 'data-testid': 'match-loading' }, 'Matching…'));
    let res;
    try { res = await getJSON(`/catalog/match?pattern=${encodeURIComponent(pattern)}`); } catch (e) {
      if (seq !== matchSeq) return;
      matchedKeys = new Set();
      highlight();
      replace(matchOut, h('div', { class: 'alert bad', 'data-testid': 'match-error', 'data-status': String(e.status) }, h('div', {}, h('div', { class: 'alert-title' }, 'Not a valid pattern'), e.detail)));
      return;
    }
    if (seq !== matchSeq) return;
    const evs = Array.isArray(res?.events) ? res.events : [];
    const subs = Array.isArray(res?.subscribers) ? res.subscribers : [];
    matchedKeys = new Set(evs.map((ev) => key(ev)));
    highlight();
    replace(matchOut, h('div', { 'data-testid': 'match-done', 'data-pattern': pattern },
      h('div', { class: 'row', style: 'margin:10px 0 6px' }, h('b', {}, `${evs.length} event type${evs.length === 1 ? '' : 's'}`), h('span', { class: 'muted' }, 'match'), h('code', {}, res?.pattern ?? pattern),
        h('span', { class: 'muted' }, `· ${subs.length} subscriber${subs.length === 1 ? '' : 's'}`)),
      h('div', { class: 'split split-match' },
        h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'match-events' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Subject'), h('th', {}, 'Publisher'), h('th', {}, 'Subscribers'))),
          h('tbody', {}, evs.length ? evs.map((ev) => h('tr', { 'data-testid': 'match-event', 'data-subject': ev.subject },
            h('td', {}, subjectEl(ev.subject)), h('td', {}, svcEl(publisherOf(ev))),
            h('td', { style: 'font-size:12px' }, subscribersOf(ev).map((x) => `${x.service}:${x.route}`).join(', ') || '—')))
            : h('tr', {}, h('td', { colspan: 3, class: 'empty' }, 'No catalogued event matches.'))))),
        h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'match-subscribers' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Subscriber'), h('th', {}, 'Route'), h('th', {}, 'Its pattern'))),
          h('tbody', {}, subs.length ? subs.map((x) => h('tr', { 'data-testid': 'match-subscriber', 'data-service': x.service, 'data-route': x.route, 'data-pattern': x.pattern || '' },
            h('td', {}, svcEl(x.service)), h('td', { class: 'mono' }, x.route), h('td', { class: 'mono' }, x.pattern || patternOf(x))))
            : h('tr', {}, h('td', { colspan: 3, class: 'empty' }, 'No subscriber.'))))))));
  }
  patternInput.addEventListener('input', () => { clearTimeout(matchTimer); matchTimer = setTimeout(runMatch, 250); });
  patternInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); runMatch(); } });

  const el = h('div', { 'data-testid': 'page-portal' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Event portal'), h('span', { class: 'muted' }, 'who publishes what, and who listens'), h('span', { class: 'grow' }),
      h('a', { class: 'button', href: '/catalog', target: '_blank', 'data-testid': 'catalog-link' }, 'Catalog JSON'),
      h('a', { class: 'button primary', href: '/asyncapi.json', download: 'udders-asyncapi.json', 'data-testid': 'asyncapi-link' }, '⬇ AsyncAPI document')),
    h('div', { class: 'card' },
      h('h2', {}, 'Match a pattern'),
      h('div', { class: 'pattern-box' }, patternInput, h('button', { type: 'button', class: 'primary', 'data-testid': 'pattern-go', onclick: runMatch }, 'Match')),
      h('div', { class: 'seed-patterns' }, h('span', { class: 'muted', style: 'font-size:12px;align-self:center' }, 'Try:'),
        SEED_PATTERNS.map((p) => h('button', { type: 'button', class: 'small', 'data-testid': 'seed-pattern', onclick: () => { patternInput.value = p; runMatch(); } }, p))),
      h('p', { class: 'faint', style: 'font-size:12px;margin:8px 0 0' }, h('code', {}, '*'), ' one level · ', h('code', {}, '**'), ' any number of levels · ', h('code', {}, '>'), ' the rest (last level only)'),
      matchOut),
    h('div', { class: 'split', style: 'margin-top:16px' },
      h('div', { class: 'card flush' }, h('div', { class: 'card-head' }, h('h2', {}, 'Catalog graph'), h('span', { class: 'muted', style: 'font-size:12px' }, 'counts and last seen live from /catalog/live')),
        h('div', { class: 'card-body' }, graphWrap)),
      detail),
    h('div', { class: 'card flush', style: 'margin-top:16px' }, h('div', { class: 'card-head' }, h('h2', {}, 'Subscriptions')), subsTable));

  renderDetail();
  loadCatalog().then(() => { if (patternInput.value.trim()) runMatch(); });
  loadLive();
  const timer = setInterval(loadLive, 2000);
  return { el, cleanup: () => { clearInterval(timer); clearTimeout(matchTimer); } };
}

// ---------------------------------------------------------------- page: tap

function pageTap(query) {
  let pattern = query.get('pattern') || '**';
  let paused = false;
  let received = 0;
  let shown = 0;
  let dropped = 0;
  let buffer = [];
  let close = null;
  let frame = 0;
  const pending = [];
  const indicator = liveIndicator();
  const patternInput = h('input', { type: 'text', value: pattern, class: 'mono', 'data-testid': 'tap-pattern', spellcheck: 'false', style: 'flex:1 1 260px' });
  const err = h('div', { 'data-testid': 'tap-error' });
  const tbody = h('tbody', { 'data-testid': 'tap-rows' });
  const counter = h('span', { class: 'counter', 'data-testid': 'tap-counter', 'data-received': '0' });
  const pauseBtn = h('button', { type: 'button', 'data-testid': 'tap-pause', onclick: togglePause }, 'Pause');
  const emptyRow = h('tr', { class: 'tap-empty' }, h('td', { colspan: 5, class: 'empty' }, 'Waiting for events… place an order to see some.'));
  tbody.append(emptyRow);

  function updateCounter() {
    counter.dataset.received = String(received);
    counter.textContent = `${fmtNumber(received)} received · ${fmtNumber(shown)} shown${paused ? ` · ${fmtNumber(buffer.length)} held while paused` : ''}${dropped ? ` · ${fmtNumber(dropped)} dropped` : ''}`;
  }

  function rowOf(ev) {
    return h('tr', { 'data-testid': 'tap-row', 'data-subject': ev.subject || '', 'data-order-id': ev.order_id || '' },
      h('td', { class: 'nowrap mono', title: ev.time || '' }, fmtClock(ev.time)),
      h('td', {}, subjectEl(ev.subject)),
      h('td', {}, ev.order_id ? orderLink(ev.order_id) : '—'),
      h('td', { class: 'hide-sm' }, svcEl(laneOf(ev))),
      h('td', {}, ev.status ? statusBadge(ev.status) : h('span', { class: 'faint' }, '—')));
  }

  function flush() {
    frame = 0;
    if (!pending.length) return;
    emptyRow.remove();
    const frag = document.createDocumentFragment();
    for (let i = pending.length - 1; i >= 0; i--) frag.append(rowOf(pending[i]));
    pending.length = 0;
    tbody.prepend(frag);
    while (tbody.children.length > TAP_MAX_ROWS) tbody.lastChild.remove();
    shown = tbody.querySelectorAll('tr[data-testid="tap-row"]').length;
    updateCounter();
  }

  function onEvent(ev) {
    if (ev.__lagged) { dropped += ev.__lagged; updateCounter(); return; }
    received++;
    if (paused) {
      buffer.push(ev);
      if (buffer.length > TAP_MAX_ROWS) { buffer.shift(); dropped++; }
      updateCounter();
      return;
    }
    pending.push(ev);
    if (pending.length > TAP_MAX_ROWS) { pending.shift(); dropped++; }
    if (!frame) frame = requestAnimationFrame(flush);
    updateCounter();
  }

  function togglePause() {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    pauseBtn.classList.toggle('primary', paused);
    pauseBtn.dataset.paused = paused ? '1' : '0';
    indicator.set(paused ? 'paused' : 'on');
    if (!paused && buffer.length) { pending.push(...buffer); buffer = []; if (pending.length > TAP_MAX_ROWS) { dropped += pending.length - TAP_MAX_ROWS; pending.splice(0, pending.length - TAP_MAX_ROWS); } flush(); }
    updateCounter();
  }

  async function start() {
    if (close) close();
    pattern = patternInput.value.trim() || '**';
    setHashQuery('/tap', { pattern: pattern === '**' ? '' : pattern });
    clear(err);
    try { await getJSON(`/catalog/match?pattern=${encodeURIComponent(pattern)}`); } catch (e) {
      if (e.status === 400 || e.status === 422) {
        replace(err, h('div', { class: 'alert bad', 'data-testid': 'tap-pattern-error' }, `Not a valid pattern: ${e.detail}`));
        indicator.set('off');
        return;
      }
    }
    close = openLive(pattern, onEvent, (st) => indicator.set(paused ? 'paused' : st));
  }

  const el = h('div', { 'data-testid': 'page-tap' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Live tap'), indicator, h('span', { class: 'grow' }), counter),
    h('div', { class: 'card', style: 'margin-bottom:16px' },
      h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); start(); } },
        h('span', { class: 'muted' }, 'Pattern'), patternInput,
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'tap-apply' }, 'Tap'),
        pauseBtn,
        h('button', { type: 'button', 'data-testid': 'tap-clear', onclick: () => { replace(tbody, emptyRow); shown = 0; received = 0; dropped = 0; buffer = []; updateCounter(); } }, 'Clear')),
      h('p', { class: 'faint', style: 'font-size:12px;margin:8px 0 0' }, `Newest first; the last ${TAP_MAX_ROWS} events are kept. Examples: `,
        ['**', 'order/>', 'payment/*/*/icecream/**', 'order/*/*/*/*/*/*/store711'].map((p, i) => [i ? ', ' : '', h('a', { href: 'javascript:void 0', class: 'mono', onclick: (e) => { e.preventDefault(); patternInput.value = p; start(); } }, p)])),
      err),
    h('div', { class: 'card flush' }, h('div', { class: 'table-wrap' }, h('table', { class: 'data tap-table', 'data-testid': 'tap-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Subject'), h('th', {}, 'Order'), h('th', { class: 'hide-sm' }, 'Source'), h('th', {}, 'Status after'))),
      tbody))));
  updateCounter();
  start();
  return { el, cleanup: () => { if (close) close(); if (frame) cancelAnimationFrame(frame); } };
}

// ---------------------------------------------------------------- page: place

function pagePlace() {
  const presets = [
    ['Happy', { customer_id: 'cust-42', country: 'sg', channel: 'lazada', items: [['mango', 2]], card: 'tok_visa', postal: '018956', version: '1.1' }],
    ['Card declined', { customer_id: 'cust-42', country: 'my', channel: 'shopee', items: [['vanilla', 1]], card: 'tok_declined', postal: '50450', version: '1.1' }],
    ['No credit', { customer_id: 'cust-broke', country: 'sg', channel: 'web', items: [['chocolate', 3]], card: 'tok_visa', postal: '018956', version: '1.1' }],
    ['Out of stock', { customer_id: 'cust-42', country: 'th', channel: 'store711', items: [['durian', 1]], card: 'tok_visa', postal: '10110', version: '1.1' }],
    ['Undeliverable', { customer_id: 'cust-42', country: 'kr', channel: 'pos', items: [['rumraisin', 2]], card: 'tok_visa', postal: '00000', version: '1.1' }],
    ['Invalid (1.2 US, no postcode)', { customer_id: 'cust-42', country: 'us', channel: 'web', items: [['vanilla', 1]], card: 'tok_visa', postal: '', version: '1.2' }],
  ];
  const select = (options, value, testid) => {
    const el = h('select', { 'data-testid': testid }, options.map((o) => h('option', { value: o }, o)));
    el.value = value;
    return el;
  };
  const customer = h('input', { type: 'text', value: 'cust-42', 'data-testid': 'place-customer' });
  const channel = select(CHANNELS, 'lazada', 'place-channel');
  const country = select(COUNTRIES, 'sg', 'place-country');
  const card = select(['tok_visa', 'tok_declined'], 'tok_visa', 'place-card');
  const postal = h('input', { type: 'text', value: '018956', 'data-testid': 'place-postal', placeholder: 'e.g. 018956' });
  const version = select(['1.1', '1.2'], '1.1', 'place-version');
  const idem = h('input', { type: 'text', placeholder: 'optional', 'data-testid': 'place-idempotency' });
  const apiKey = h('input', { type: 'password', value: store.get(LS.apiKey), 'data-testid': 'place-api-key', placeholder: 'sent as Authorization: Bearer …', autocomplete: 'off' });
  const apiKeyField = h('label', { class: 'field full hidden', 'data-testid': 'place-api-key-field' }, 'API key', apiKey);
  const lines = h('div', { 'data-testid': 'place-lines' });
  const errorBox = h('div', { 'data-testid': 'place-error' });
  const result = h('div', { 'data-testid': 'place-result' }, h('div', { class: 'card empty muted' }, 'Place an order: its status follows here live, and its swimlane appears below.'));
  const embeddedHost = h('div', { 'data-testid': 'place-embedded', style: 'margin-top:16px' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'place-submit' }, 'Place order');
  let follow = null;

  function addLine(flavor = 'mango', quantity = 1) {
    const f = select(FLAVORS, flavor, 'place-flavor');
    const q = h('input', { type: 'number', min: '0', max: '1000', value: String(quantity), 'data-testid': 'place-quantity' });
    const line = h('div', { class: 'line', 'data-testid': 'place-line' },
      h('label', { class: 'field' }, 'Flavour', f), h('label', { class: 'field' }, 'Quantity', q),
      h('button', { type: 'button', class: 'ghost', title: 'Remove line', 'data-testid': 'place-remove-line', onclick: () => { if (lines.children.length > 1) line.remove(); } }, '✕'));
    line.read = () => ({ flavor: f.value, quantity: Math.max(0, Math.floor(Number(q.value) || 0)) });
    lines.append(line);
  }
  addLine('mango', 2);

  function applyPreset(p) {
    customer.value = p.customer_id; country.value = p.country; channel.value = p.channel; card.value = p.card; postal.value = p.postal; version.value = p.version;
    clear(lines);
    for (const [f, q] of p.items) addLine(f, q);
  }

  async function place(e) {
    e.preventDefault();
    clear(errorBox);
    const body = {
      customer_id: customer.value.trim(),
      channel: channel.value,
      country: country.value,
      items: [...lines.children].map((l) => l.read()),
      payment: { card_token: card.value },
      delivery: { postal_code: postal.value.trim() || null },
      schema_version: version.value,
    };
    if (!body.delivery.postal_code) body.delivery = {};
    if (apiKey.value.trim()) store.set(LS.apiKey, apiKey.value.trim());
    submit.disabled = true;
    let res;
    try {
      res = await request('/orders', { method: 'POST', json: body, auth: accessInfo.api_keys_required || store.get(LS.apiKey) ? 'apikey' : null,
        headers: idem.value.trim() ? { 'idempotency-key': idem.value.trim() } : {} });
    } catch (err) {
      submit.disabled = false;
      replace(errorBox, h('div', { class: 'alert bad', 'data-testid': 'place-problem' }, h('div', {}, h('div', { class: 'alert-title' }, err.body?.title || `Refused (${err.status || 'network'})`), err.detail)));
      return;
    } finally { submit.disabled = false; }
    apiKey.value = store.get(LS.apiKey);
    showResult(res.body || {});
  }

  function showResult(accepted) {
    if (follow) follow.close();
    const id = accepted.order_id;
    const statusHolder = h('span', {}, statusBadge(accepted.status || 'PLACED', true));
    const progress = h('div', { class: 'progress', 'data-testid': 'place-progress' });
    const embedded = embeddedHost;
    replace(result,
      h('div', { class: 'card', 'data-testid': 'place-accepted', 'data-order-id': id || '' },
        h('div', { class: 'row' }, h('h2', { style: 'margin:0' }, 'Accepted'), h('span', { 'data-testid': 'place-status', 'data-status': accepted.status || 'PLACED' }, statusHolder), h('span', { class: 'grow' }),
          id ? h('a', { class: 'button', href: `#/orders/${encodeURIComponent(id)}`, 'data-testid': 'place-order-link' }, 'Open the order page →') : null),
        h('table', { class: 'kv', style: 'margin-top:10px' }, h('tbody', {},
          h('tr', {}, h('th', {}, 'order_id'), h('td', { class: 'mono', 'data-testid': 'place-order-id' }, id || '—')),
          h('tr', {}, h('th', {}, 'correlation_id'), h('td', { class: 'mono' }, accepted.correlation_id || '—')))),
        progress));
    renderProgress(progress, { status: accepted.status, timeline: [] });
    if (!id) return;
    follow = mountOrder(embedded, id, {
      embedded: true,
      onUpdate: (o) => {
        const holder = result.querySelector('[data-testid="place-status"]');
        if (holder) { holder.dataset.status = o.status; replace(holder, statusBadge(o.status, true)); }
        renderProgress(progress, o);
      },
    });
  }

  function renderProgress(el, o) {
    const names = new Set((o.timeline || []).map((e) => nameOf(e.subject)));
    const steps = [
      ['placed', true],
      ['validated', names.has('order/valid') ? 'done' : names.has('order/invalid') ? 'bad' : ''],
      ['credit', names.has('credit/reserved') ? 'done' : names.has('credit/rejected') ? 'bad' : ''],
      ['stock', names.has('inventory/reserved') ? 'done' : names.has('inventory/rejected') ? 'bad' : ''],
      ['paid', names.has('payment/captured') ? 'done' : names.has('payment/declined') ? 'bad' : ''],
      ['shipped', names.has('order/shipped') ? 'done' : names.has('fulfillment/failed') ? 'bad' : ''],
    ];
    replace(el, steps.map(([label, st]) => h('span', { class: `stp ${st === true ? 'done' : st}` }, label)),
      TERMINAL.has(String(o.status)) ? h('span', { style: 'margin-left:4px' }, '→ ', statusBadge(o.status)) : null);
  }

  accessLoaded.then((a) => { apiKeyField.classList.toggle('hidden', !a.api_keys_required); });

  const el = h('div', { 'data-testid': 'page-place' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Place an order'), h('span', { class: 'muted' }, 'POST /orders, then follow the saga live')),
    h('div', { class: 'split split-place' },
      h('form', { class: 'card', onsubmit: place, 'data-testid': 'place-form' },
        h('div', { class: 'presets', style: 'margin-bottom:14px' }, h('span', { class: 'muted', style: 'font-size:12px;align-self:center' }, 'Presets:'),
          presets.map(([label, p]) => h('button', { type: 'button', class: 'small', 'data-testid': 'place-preset', onclick: () => applyPreset(p) }, label))),
        h('div', { class: 'form-grid' },
          h('label', { class: 'field' }, 'Customer', customer),
          h('label', { class: 'field' }, 'Channel', channel),
          h('label', { class: 'field' }, 'Country', country),
          h('label', { class: 'field' }, 'Schema version', version),
          h('div', { class: 'full' }, h('h3', { style: 'margin:6px 0 6px' }, 'Items'), lines,
            h('button', { type: 'button', class: 'small', 'data-testid': 'place-add-line', onclick: () => addLine('vanilla', 1) }, '+ Add line')),
          h('label', { class: 'field' }, 'Card token', card),
          h('label', { class: 'field' }, 'Postal code', postal),
          h('label', { class: 'field full' }, 'Idempotency key', idem),
          apiKeyField),
        h('div', { class: 'row', style: 'margin-top:16px' }, submit, h('span', { class: 'faint', style: 'font-size:12px' }, 'Business refusals are not errors: the order ends REJECTED.')),
        h('div', { style: 'margin-top:12px' }, errorBox)),
      h('div', {}, result)),
    embeddedHost);
  return { el, cleanup: () => { if (follow) follow.close(); } };
}

// ---------------------------------------------------------------- start

document.querySelector('[data-testid="token-button"]')?.addEventListener('click', editToken);
document.querySelector('[data-testid="menu-toggle"]')?.addEventListener('click', () => document.querySelector('.topbar')?.classList.toggle('open'));
updateTokenButton();
window.addEventListener('hashchange', route);
route();

// For tests and the curious: the console's helpers.
window.udders = { parseTime, analyseTimeline, kindOf, laneOf, version: 1 };
