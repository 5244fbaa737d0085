// Helpers of the console's browser tests: the browser, the API, Kafka.

import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

export const BASE = (process.env.UDDERS_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
export const BROKER = process.env.UDDERS_BROKER || '127.0.0.1:9092';
export const OPERATOR_TOKEN = process.env.UDDERS_OPERATOR_TOKEN || 'test-operator-token';
export const CHROMIUM = process.env.UDDERS_CHROMIUM || '/usr/bin/chromium';
export const TERMINAL = ['COMPLETED', 'REJECTED', 'CANCELLED'];

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A page that records the console's uncaught errors in `page.errors`. */
export async function openPage(browser, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.close = ((close) => async () => { await close(); await context.close(); })(page.close.bind(page));
  return page;
}

export async function api(path, { method = 'GET', body, token, headers = {} } = {}) {
  const h = { accept: 'application/json', ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  if (token) h.authorization = `Bearer ${token}`;
  const res = await fetch(BASE + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  return { status: res.status, body: json, headers: res.headers };
}

export function order(overrides = {}) {
  return {
    customer_id: 'cust-42', channel: 'lazada', country: 'sg',
    items: [{ flavor: 'mango', quantity: 2 }],
    payment: { card_token: 'tok_visa' }, delivery: { postal_code: '018956' },
    schema_version: '1.1',
    ...overrides,
  };
}

export async function placeOrder(overrides) {
  const res = await api('/orders', { method: 'POST', body: order(overrides) });
  if (res.status !== 202) throw new Error(`POST /orders answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function waitFor(what, fn, { timeout = 15_000, interval = 100 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Waits for an order to reach a terminal status; returns its view. */
export function terminal(orderId, timeout = 20_000) {
  return waitFor(`order ${orderId} to end`, async () => {
    const res = await api(`/orders/${orderId}`);
    return res.status === 200 && TERMINAL.includes(res.body.status) ? res.body : null;
  }, { timeout, interval: 150 });
}

export async function deadLetters(query = '') {
  const res = await api(`/dead-letters${query}`, { token: OPERATOR_TOKEN });
  if (res.status !== 200) throw new Error(`GET /dead-letters answered ${res.status}: ${JSON.stringify(res.body)}`);
  return Array.isArray(res.body) ? res.body : res.body?.dead_letters || [];
}

/**
 * Produces one record onto `topic` of the broker, with the envelope headers
 * of an order/init (the CloudEvents attributes plus the Udders extensions
 * `correlationid` and `sequence`, which every consumer requires) but a value
 * that is not JSON: validation, which routes order/init/>, dead-letters it
 * ("the value is not JSON"), and so does the order service, which follows
 * every event. Without the two extensions, every consumer of the topic would
 * dead-letter it for the missing header instead.
 */
export async function produceMalformed({ topic = 'udders.order', subject = 'order/init/1.1/icecream/udders/mango/sg/web', value = 'not json', key = 'x' } = {}) {
  const { Kafka, logLevel } = require('kafkajs');
  const kafka = new Kafka({ clientId: 'udders-browser-tests', brokers: [BROKER], logLevel: logLevel.NOTHING, retry: { retries: 5 } });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const id = randomUUID();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: [{
        key,
        value,
        headers: {
          ce_specversion: '1.0', ce_id: id, ce_source: '/udders/order', ce_type: 'udders.order.init',
          ce_subject: subject, ce_time: new Date().toISOString(), 'content-type': 'application/json',
          correlationid: randomUUID(), sequence: '1',
        },
      }],
    });
  } finally {
    await producer.disconnect();
  }
  return id;
}
