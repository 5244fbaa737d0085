#!/usr/bin/env node
// A fake Udders HTTP API, for working on the console without the Rust
// binary: `node tests/browser/mock-server.mjs [port]` then open
// http://127.0.0.1:PORT/. It serves the real assets from
// src/console/assets and simulates sagas (happy, declined, no credit, out of
// stock, undeliverable, invalid) with the API shapes the console expects.
// `customer_id: "cust-slow"` stops before payment (a stuck order). The
// browser tests do not use it: they run against `udders up`.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = path.resolve(here, '../../src/console/assets');
const port = Number(process.argv[2] || process.env.PORT || 18099);
const TOKEN = process.env.UDDERS_OPERATOR_TOKEN || 'test-operator-token';

const PRICES = { vanilla: 500, chocolate: 550, mango: 600, rumraisin: 650, durian: 900 };
const orders = new Map();
const clients = new Set();
const deadLetters = [];
const liveCounts = {};
const completions = [];
const now = () => new Date().toISOString().replace('Z', '000Z');

// ------------------------------------------------------------------ catalog
const EVENTS = [
  ['order', 'init', '1.1', 'order', 'OrderPlaced', 'The point of sale placed an order.'],
  ['order', 'init', '1.2', 'order', 'OrderPlaced', 'An order in payload version 1.2 (postal code checked for the US).'],
  ['order', 'valid', '1.0', 'validation', 'OrderValidated', 'The order passed its rule set.'],
  ['order', 'invalid', '1.0', 'validation', 'OrderInvalidated', 'The order broke its rule set.'],
  ['credit', 'reserved', '1.0', 'credit', 'CreditMoved', "The order amount is held against the customer's limit."],
  ['credit', 'rejected', '1.0', 'credit', 'StepRefused', "The customer's available credit is too low."],
  ['credit', 'released', '1.0', 'credit', 'CreditMoved', 'A credit reservation was let go (compensation).'],
  ['inventory', 'reserved', '1.0', 'inventory', 'StockMoved', 'Stock is held for the order.'],
  ['inventory', 'rejected', '1.0', 'inventory', 'StepRefused', 'Not enough stock.'],
  ['inventory', 'released', '1.0', 'inventory', 'StockMoved', 'A stock reservation was let go or restocked (compensation).'],
  ['payment', 'captured', '1.0', 'payment', 'PaymentMoved', 'The card was charged.'],
  ['payment', 'declined', '1.0', 'payment', 'StepRefused', 'The card was declined.'],
  ['payment', 'refunded', '1.0', 'payment', 'PaymentMoved', 'A capture was refunded (compensation).'],
  ['order', 'shipped', '1.0', 'fulfillment', 'OrderShipped', 'The carrier took the parcel.'],
  ['fulfillment', 'failed', '1.0', 'fulfillment', 'StepRefused', 'The carrier cannot deliver.'],
  ['order', 'cancelled', '1.0', 'order', 'OrderCalledOff', 'The customer cancelled before shipping.'],
  ['order', 'expired', '1.0', 'order', 'OrderCalledOff', 'The saga deadline passed.'],
];
const SUBS = [
  ['validation', 'rules-1.2-us', 'order/init/1.2/**/us/*'], ['validation', 'rules-1.1', 'order/init/>'],
  ['credit', 'reserve', 'order/valid/>'], ['credit', 'release', 'inventory/rejected/>'],
  ['inventory', 'reserve', 'order/valid/>'], ['inventory', 'release', 'credit/rejected/>'],
  ['payment', 'order', 'order/valid/>'], ['payment', 'credit', 'credit/>'], ['payment', 'stock', 'inventory/>'],
  ['payment', 'refund', 'fulfillment/failed/>'], ['fulfillment', 'ship', 'payment/captured/>'],
  ['inventory', 'ship', 'order/shipped/>'], ['fulfillment', 'cancel', 'order/cancelled/>'], ['fulfillment', 'cancel', 'order/expired/>'],
  ['order', 'follow', '**'],
];
for (const c of ['order/cancelled/>', 'order/expired/>', 'payment/declined/>', 'fulfillment/failed/>']) {
  SUBS.push(['credit', 'release', c], ['inventory', 'release', c]);
}
SUBS.push(['payment', 'refund', 'order/cancelled/>'], ['payment', 'refund', 'order/expired/>']);

function parsePattern(p) {
  const lv = String(p).split('/');
  if (!p || lv.some((l) => l === '')) throw new Error(`the pattern ${JSON.stringify(p)} has an empty level`);
  lv.forEach((l, i) => {
    if (l === '>' && i !== lv.length - 1) throw new Error(`'>' must be the last level of ${JSON.stringify(p)}`);
    if (/[*>]/.test(l) && !['*', '**', '>'].includes(l)) throw new Error(`the level ${JSON.stringify(l)} mixes a wildcard with text`);
  });
  return lv;
}
// Could the pattern match a subject whose levels are given (null = any value)?
function couldMatch(pat, lv, i = 0, j = 0) {
  if (i === pat.length) return j === lv.length;
  const p = pat[i];
  if (p === '>') return j < lv.length;
  if (p === '**') { for (let k = j; k <= lv.length; k++) if (couldMatch(pat, lv, i + 1, k)) return true; return false; }
  if (j >= lv.length) return false;
  if (p === '*' || lv[j] == null || lv[j] === p) return couldMatch(pat, lv, i + 1, j + 1);
  return false;
}
const levelsOf = ([d, a, v]) => [d, a, v, 'icecream', 'udders', null, null, null];
const subscribersOf = (e) => {
  const out = [];
  for (const [service, route, pattern] of SUBS) {
    if (couldMatch(parsePattern(pattern), levelsOf(e)) && !out.some((x) => x.service === service && x.route === route)) out.push({ service, route });
  }
  return out;
};
const catalog = {
  events: EVENTS.map((e) => ({
    name: `${e[0]}/${e[1]}`, subject: `${e[0]}/${e[1]}/${e[2]}/icecream/udders/{product}/{country}/{channel}`, version: e[2],
    type: `udders.${e[0]}.${e[1]}`, summary: e[5], publisher: e[3], topic: `udders.${e[3]}`, payload: e[4],
    schema: { $schema: 'https://json-schema.org/draft/2020-12/schema', title: e[4], type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
    subscribers: subscribersOf(e),
  })),
  subscriptions: SUBS.map(([service, route, pattern]) => ({ service, route, pattern })),
};

// ------------------------------------------------------------------ saga simulation
const PUBLISHER = Object.fromEntries(EVENTS.map((e) => [`${e[0]}/${e[1]}`, e[3]]));
const KIND = (name) => (/released|refunded/.test(name) ? 'compensation' : /invalid|rejected|declined|failed|expired|cancelled/.test(name) ? 'refusal' : 'step');

function emit(o, name, cause, payload, version = '1.0') {
  const e = {
    event_id: crypto.randomUUID(), subject: `${name.split('/')[0]}/${name.split('/')[1]}/${version}/icecream/udders/${o.product}/${o.country}/${o.channel}`,
    source: `/udders/${PUBLISHER[name]}`, time: now(), causation_id: cause ? cause.event_id : null, kind: KIND(name),
    payload: { order_id: o.order_id, ...payload },
  };
  o.timeline.push(e);
  o.updated_at = e.time;
  const key = `${name}/${version}`;
  liveCounts[key] = { count: (liveCounts[key]?.count || 0) + 1, last_seen: e.time };
  return e;
}
function setStatus(o, status, reason) {
  o.status = status;
  if (reason !== undefined) o.reason = reason;
  o.stream.push({ sequence: o.stream.length + 1, type: status.charAt(0) + status.slice(1).toLowerCase(), recorded_at: now(), data: { status, reason: o.reason ?? null }, metadata: { correlation_id: o.correlation_id } });
  if (['COMPLETED', 'REJECTED', 'CANCELLED'].includes(status)) completions.push({ at: Date.now(), ms: Date.now() - Date.parse(o.placed_at), completed: status === 'COMPLETED' });
}
function broadcast(o, e) {
  const data = JSON.stringify({ event_id: e.event_id, subject: e.subject, order_id: o.order_id, time: e.time, source: e.source, status: o.status });
  for (const c of clients) if (couldMatch(c.pattern, e.subject.split('/'))) c.res.write(`event: event\ndata: ${data}\n\n`);
}
const later = (ms) => new Promise((r) => setTimeout(r, ms + Math.random() * ms));
function waitOn(o, on, step) { o.waiting = { on, since: now(), step }; }

async function saga(o) {
  const step = async (ms, name, cause, payload, version) => { await later(ms); const e = emit(o, name, cause, payload, version); return e; };
  const init = emit(o, 'order/init', null, { customer_id: o.customer_id, items: o.items, total: o.total }, o.schema_version);
  broadcast(o, init);
  waitOn(o, ['validation'], 'order/valid');
  await later(6);
  const invalid = o.country === 'us' && o.schema_version === '1.2' && !/^\d{5}$/.test(o.postal_code || '');
  if (invalid || o.items.some((i) => !(i.flavor in PRICES) || i.quantity < 1 || i.quantity > 100)) {
    const e = emit(o, 'order/invalid', init, { reasons: ['rule set 1.2 needs a five-digit postal code'] });
    setStatus(o, 'REJECTED', 'rule set 1.2 needs a five-digit postal code'); o.waiting = null; broadcast(o, e); return;
  }
  const valid = emit(o, 'order/valid', init, { rule_set: '1.1' });
  setStatus(o, 'VALIDATED'); waitOn(o, ['credit', 'inventory'], 'credit/reserved'); broadcast(o, valid);
  const broke = o.customer_id === 'cust-broke';
  const nostock = o.items.some((i) => i.flavor === 'durian');
  const credit = await step(8, broke ? 'credit/rejected' : 'credit/reserved', valid, { amount: o.total });
  broadcast(o, credit);
  const stock = await step(5, nostock ? 'inventory/rejected' : 'inventory/reserved', valid, { lines: o.items });
  broadcast(o, stock);
  if (broke || nostock) {
    setStatus(o, 'COMPENSATING', broke ? 'credit limit exceeded' : 'not enough durian in th');
    if (!broke) broadcast(o, await step(6, 'credit/released', stock, { amount: o.total }));
    if (!nostock) broadcast(o, await step(6, 'inventory/released', credit, { lines: o.items }));
    setStatus(o, 'REJECTED'); o.waiting = null; broadcast(o, o.timeline.at(-1)); return;
  }
  setStatus(o, 'RESERVED'); waitOn(o, ['payment'], 'payment/captured');
  if (o.customer_id === 'cust-slow') { o.waiting.since = now(); return; }
  if (o.card_token === 'tok_declined') {
    const d = await step(10, 'payment/declined', stock, { reason: 'card declined' });
    setStatus(o, 'COMPENSATING', 'card declined'); broadcast(o, d);
    broadcast(o, await step(6, 'credit/released', d, { amount: o.total }));
    broadcast(o, await step(6, 'inventory/released', d, { lines: o.items }));
    setStatus(o, 'REJECTED'); o.waiting = null; broadcast(o, o.timeline.at(-1)); return;
  }
  const paid = await step(12, 'payment/captured', stock, { amount: o.total });
  setStatus(o, 'PAID'); waitOn(o, ['fulfillment'], 'order/shipped'); broadcast(o, paid);
  if (o.postal_code === '00000') {
    const f = await step(10, 'fulfillment/failed', paid, { reason: 'postal code 00000 is undeliverable' });
    setStatus(o, 'COMPENSATING', 'postal code 00000 is undeliverable'); broadcast(o, f);
    broadcast(o, await step(6, 'credit/released', f, { amount: o.total }));
    broadcast(o, await step(6, 'inventory/released', f, { lines: o.items }));
    broadcast(o, await step(8, 'payment/refunded', f, { amount: o.total }));
    setStatus(o, 'REJECTED'); o.waiting = null; broadcast(o, o.timeline.at(-1)); return;
  }
  const shipped = await step(10, 'order/shipped', paid, { carrier: 'ninja', tracking: 'NV' + Math.floor(Math.random() * 1e8) });
  setStatus(o, 'COMPLETED'); o.waiting = null; broadcast(o, shipped);
}

function place(body) {
  const id = crypto.randomUUID();
  const items = (body.items || []).map((i) => ({ flavor: i.flavor, quantity: i.quantity, unit_price: PRICES[i.flavor] ?? 0 }));
  const flavors = [...new Set(items.map((i) => i.flavor))];
  const o = {
    order_id: id, status: 'PLACED', reason: null, total: items.reduce((a, i) => a + i.unit_price * i.quantity, 0),
    customer_id: body.customer_id, channel: body.channel, country: body.country, items, schema_version: body.schema_version || '1.1',
    placed_at: now(), updated_at: now(), deadline: new Date(Date.now() + 30000).toISOString(), correlation_id: crypto.randomUUID(),
    timeline: [], waiting: null, dead_letters: [], card_token: body.payment?.card_token, postal_code: body.delivery?.postal_code,
    product: flavors.length === 1 ? flavors[0] : 'mixed', stream: [],
  };
  o.stream.push({ sequence: 1, type: 'Placed', recorded_at: o.placed_at, data: { order_id: id, customer_id: o.customer_id, items, total: o.total }, metadata: { correlation_id: o.correlation_id } });
  orders.set(id, o);
  setTimeout(() => saga(o).catch(console.error), 1);
  return o;
}

function addDeadLetter(orderId) {
  const n = deadLetters.filter((d) => d.service === 'validation').length + 1;
  const d = {
    id: `validation-${n}`, service: 'validation', topic: 'udders.order', partition: 0, offset: 40 + n,
    subject: 'order/init/1.1/icecream/udders/mango/sg/web', order_id: orderId || null,
    reason: 'the payload is not JSON: expected value at line 1 column 1', attempts: 1,
    first_failed_at: now(), last_failed_at: now(), status: 'parked', note: null, payload: 'not json',
    headers: [['ce_specversion', '1.0'], ['ce_id', crypto.randomUUID()], ['ce_source', '/udders/order'], ['ce_type', 'udders.order.init'], ['ce_subject', 'order/init/1.1/icecream/udders/mango/sg/web'], ['content-type', 'application/json']],
  };
  deadLetters.push(d);
  if (orderId && orders.has(orderId)) orders.get(orderId).dead_letters.push(d);
  return d;
}

// ------------------------------------------------------------------ HTTP
const send = (res, status, body, headers = {}) => {
  const problem = status >= 400;
  res.writeHead(status, { 'content-type': problem ? 'application/problem+json' : 'application/json', ...headers });
  res.end(JSON.stringify(body));
};
const problem = (res, status, title, detail) => send(res, status, { type: 'about:blank', title, status, detail });
const authorized = (req) => req.headers.authorization === `Bearer ${TOKEN}`;
const view = (o) => { const { stream, card_token, postal_code, product, ...rest } = o; return { ...rest, waiting: o.waiting && { ...o.waiting, for_ms: Date.now() - Date.parse(o.waiting.since) } }; };
const summaryRow = (o) => ({ order_id: o.order_id, status: o.status, reason: o.reason, total: o.total, customer_id: o.customer_id, channel: o.channel, country: o.country, placed_at: o.placed_at, updated_at: o.updated_at });
const percentile = (xs, p) => { if (!xs.length) return null; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]; };

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const q = Object.fromEntries(url.searchParams);
  const body = await new Promise((r) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => r(b)); });
  try {
    if (req.method === 'GET' && (p === '/' || p === '/index.html')) { res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }); return res.end(fs.readFileSync(path.join(assets, 'index.html'))); }
    if (req.method === 'GET' && p === '/console/console.js') { res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }); return res.end(fs.readFileSync(path.join(assets, 'console.js'))); }
    if (req.method === 'GET' && p === '/console/console.css') { res.writeHead(200, { 'content-type': 'text/css; charset=utf-8' }); return res.end(fs.readFileSync(path.join(assets, 'console.css'))); }
    if (p === '/readyz' || p === '/livez') return send(res, 200, { ready: true });
    if (p === '/console/access') return send(res, 200, { operator_token_required: true, operator_actions_enabled: true, api_keys_required: false });
    if (p === '/live') {
      let pattern;
      try { pattern = parsePattern(q.pattern || '**'); } catch (e) { return problem(res, 400, 'Bad pattern', e.message); }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(': hello\n\n');
      const c = { res, pattern };
      clients.add(c);
      const ka = setInterval(() => res.write(': keepalive\n\n'), 15000);
      req.on('close', () => { clients.delete(c); clearInterval(ka); });
      return;
    }
    if (req.method === 'POST' && p === '/orders') {
      let b; try { b = JSON.parse(body); } catch { return problem(res, 400, 'Bad Request', 'the body is not JSON'); }
      if (!b.customer_id) return problem(res, 422, 'Unprocessable Entity', 'customer_id: missing');
      const o = place(b);
      return send(res, 202, { order_id: o.order_id, status: 'PLACED', correlation_id: o.correlation_id }, { location: `/orders/${o.order_id}` });
    }
    if (p === '/orders') {
      let rows = [...orders.values()].sort((a, b) => b.updated_at.localeCompare(a.updated_at));
      for (const k of ['status', 'country', 'channel']) if (q[k]) rows = rows.filter((o) => o[k] === q[k]);
      if (q.customer) rows = rows.filter((o) => o.customer_id === q.customer);
      const limit = Number(q.limit || 50);
      const start = Number(q.after || 0);
      const page = rows.slice(start, start + limit);
      const headers = {};
      if (start + limit < rows.length) {
        const u = new URLSearchParams({ ...q, limit: String(limit), after: String(start + limit) });
        headers.link = `</orders?${u}>; rel="next"`;
      }
      return send(res, 200, page.map(summaryRow), headers);
    }
    if (p === '/orders/stats' || p === '/console/summary') {
      const by = (k) => { const m = {}; for (const o of orders.values()) m[o[k]] = (m[o[k]] || 0) + 1; return m; };
      const win = completions.filter((c) => Date.now() - c.at < 60000);
      const out = { total: orders.size, by_status: by('status'), by_country: by('country'), by_channel: by('channel') };
      if (p === '/console/summary') Object.assign(out, { ended: { COMPLETED: win.filter((c) => c.completed).length, REJECTED: win.filter((c) => !c.completed).length }, completed_per_sec: win.filter((c) => c.completed).length / 60, p50_ms: percentile(win.map((c) => c.ms), 50), p99_ms: percentile(win.map((c) => c.ms), 99), window_secs: 60 });
      return send(res, 200, out);
    }
    if (p === '/orders/stuck') {
      const ms = (parseFloat(q.older_than || '5') || 0) * (/ms$/.test(q.older_than || '') ? 1 : 1000);
      const groups = new Map();
      for (const o of orders.values()) {
        if (!o.waiting || ['COMPLETED', 'REJECTED', 'CANCELLED'].includes(o.status)) continue;
        const age = Date.now() - Date.parse(o.updated_at);
        if (age < ms) continue;
        const key = o.waiting.on.join('+');
        if (!groups.has(key)) groups.set(key, { waiting_on: key, step: o.waiting.step, count: 0, oldest_age_ms: 0, orders: [] });
        const g = groups.get(key);
        g.count++; g.oldest_age_ms = Math.max(g.oldest_age_ms, age);
        g.orders.push({ order_id: o.order_id, status: o.status, age_ms: age, last_subject: o.timeline.at(-1)?.subject, waiting: o.waiting, dead_letters: o.dead_letters.map((d) => d.id) });
      }
      const gs = [...groups.values()];
      return send(res, 200, { older_than_ms: ms, total: gs.reduce((a, g) => a + g.count, 0), groups: gs });
    }
    let m;
    if ((m = /^\/orders\/([^/]+)\/events$/.exec(p))) {
      const o = orders.get(decodeURIComponent(m[1]));
      return o ? send(res, 200, o.stream) : problem(res, 404, 'Not Found', `no order ${m[1]}`);
    }
    if ((m = /^\/orders\/([^/]+)$/.exec(p))) {
      const o = orders.get(decodeURIComponent(m[1]));
      return o ? send(res, 200, view(o)) : problem(res, 404, 'Not Found', `no order ${m[1]}`);
    }
    if (p === '/dead-letters' && req.method === 'GET') {
      let rows = deadLetters;
      if (q.service) rows = rows.filter((d) => d.service === q.service);
      if (q.status) rows = rows.filter((d) => d.status === q.status);
      if (q.reason) rows = rows.filter((d) => d.reason.includes(q.reason));
      return send(res, 200, rows);
    }
    if (p === '/dead-letters/replay' && req.method === 'POST') {
      if (!authorized(req)) return problem(res, 401, 'Unauthorized', 'this action needs the operator token');
      const rows = deadLetters.filter((d) => d.status === 'parked' && (!q.service || d.service === q.service) && (!q.reason || d.reason.includes(q.reason)));
      rows.forEach((d) => { d.attempts++; d.last_failed_at = now(); });
      return send(res, 200, { replayed: 0, failed: rows.length });
    }
    if ((m = /^\/dead-letters\/([^/]+)\/(replay|discard)$/.exec(p)) && req.method === 'POST') {
      if (!authorized(req)) return problem(res, 401, 'Unauthorized', 'this action needs the operator token');
      const d = deadLetters.find((x) => x.id === decodeURIComponent(m[1]));
      if (!d) return problem(res, 404, 'Not Found', `no dead letter ${m[1]}`);
      if (m[2] === 'discard') { d.status = 'discarded'; d.note = JSON.parse(body || '{}').note || null; return send(res, 200, { id: d.id, status: d.status }); }
      d.attempts++; d.last_failed_at = now();
      return problem(res, 422, 'Unprocessable Entity', `${d.id} failed again: ${d.reason}`);
    }
    if (p === '/catalog') return send(res, 200, catalog);
    if (p === '/catalog/live') return send(res, 200, liveCounts);
    if (p === '/catalog/match') {
      let pat;
      try { pat = parsePattern(q.pattern || ''); } catch (e) { return problem(res, 400, 'Bad Request', `pattern: ${e.message}`); }
      const events = catalog.events.filter((e) => couldMatch(pat, levelsOf([...e.name.split('/'), e.version]))).map((e) => ({
        subject: e.subject, name: e.name, version: e.version, publisher: e.publisher,
        subscribers: e.subscribers.map((s) => ({ ...s, pattern: SUBS.find((x) => x[0] === s.service && x[1] === s.route)[2] })),
      }));
      const subscribers = [];
      for (const e of events) for (const s of e.subscribers) if (!subscribers.some((x) => x.service === s.service && x.route === s.route)) subscribers.push(s);
      return send(res, 200, { pattern: q.pattern, events, subscribers });
    }
    if (p === '/asyncapi.json') return send(res, 200, { asyncapi: '3.0.0', info: { title: 'Udders', version: '1' } });
    if (p === '/mock/dead-letter' && req.method === 'POST') return send(res, 200, addDeadLetter(q.order_id));
    return problem(res, 404, 'Not Found', `no route ${p}`);
  } catch (e) {
    console.error(e);
    return problem(res, 500, 'Internal Server Error', String(e));
  }
});

server.listen(port, '127.0.0.1', () => console.log(`mock Udders API on http://127.0.0.1:${port}/`));
