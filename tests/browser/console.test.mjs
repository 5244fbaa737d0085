// Browser tests of the Udders console, against a running `udders up`
// (UDDERS_URL, UDDERS_BROKER, UDDERS_OPERATOR_TOKEN): see scripts/test-browser.
// Run with `node --test`; each test drives the real UI in Debian's chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, OPERATOR_TOKEN, launch, openPage, api, placeOrder, terminal, waitFor, deadLetters, produceMalformed,
} from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function withPage(opts, fn) {
  const page = await openPage(browser, opts);
  try {
    await fn(page);
    assert.deepEqual(page.errors, [], 'the console threw');
  } finally {
    await page.close();
  }
}

test('a. the board shows a posted order within 2 s, without a reload', async () => {
  await withPage({}, async (page) => {
    const subscribed = page.waitForRequest((r) => r.url().includes('/live?'));
    await page.goto(`${BASE}/#/`);
    await page.waitForSelector('[data-testid="orders-table"]');
    await subscribed;
    await page.waitForTimeout(500); // the server subscribes as it answers the request
    await page.evaluate(() => { window.__noReload = 'still here'; });
    const posted = Date.now();
    const { order_id: id } = await placeOrder({ channel: 'web' });
    await page.waitForSelector(`[data-testid="order-row"][data-order-id="${id}"]`, { timeout: 2_000 });
    const took = Date.now() - posted;
    assert.ok(took <= 2_000, `the order appeared ${took} ms after its POST`);
    assert.equal(await page.evaluate(() => window.__noReload), 'still here', 'the page was reloaded');
    // The total card counts it too (the summary is refreshed with the list).
    const total = Number(await page.getAttribute('[data-testid="count-total"]', 'data-count'));
    assert.ok(total >= 1, `total card says ${total}`);
  });
});

test('b. a happy order draws six lanes and a node per timeline event', async () => {
  const { order_id: id } = await placeOrder({ country: 'sg', items: [{ flavor: 'mango', quantity: 1 }], payment: { card_token: 'tok_visa' } });
  const ended = await terminal(id);
  assert.equal(ended.status, 'COMPLETED', `the happy order ended ${ended.status}: ${ended.reason}`);
  // COMPLETED comes with order/shipped; credit/settled, the saga's last
  // event, may join the timeline a moment later: draw the whole timeline.
  const view = await waitFor('credit/settled in the timeline', async () => {
    const { body } = await api(`/orders/${id}`);
    return body.timeline.some((e) => String(e.subject).startsWith('credit/settled/')) ? body : null;
  });
  assert.ok(view.timeline.length >= 6, `timeline of ${view.timeline.length}`);
  await withPage({}, async (page) => {
    await page.goto(`${BASE}/#/orders/${id}`);
    await page.waitForSelector('[data-testid="swimlane"]');
    const lanes = await page.$$eval('[data-testid="lane"]', (ls) => ls.map((l) => l.dataset.lane));
    assert.deepEqual(lanes, ['order', 'validation', 'credit', 'inventory', 'payment', 'fulfillment']);
    const nodes = await page.$$eval('[data-testid="timeline-node"]', (ns) => ns.map((n) => ({ id: n.dataset.eventId, lane: n.dataset.lane, kind: n.dataset.kind })));
    assert.equal(nodes.length, view.timeline.length, 'one node per timeline event');
    assert.deepEqual(new Set(nodes.map((n) => n.id)), new Set(view.timeline.map((e) => e.event_id)));
    assert.ok(nodes.every((n) => n.kind === 'step'), `a happy order has only steps: ${JSON.stringify(nodes)}`);
    // every node sits in the lane of its source
    for (const e of view.timeline) {
      const lane = String(e.source).split('/').pop();
      assert.equal(nodes.find((n) => n.id === e.event_id).lane, lane, `${e.subject} from ${e.source}`);
    }
    // an arrow per cause found in the timeline
    const ids = new Set(view.timeline.map((e) => e.event_id));
    const caused = view.timeline.filter((e) => e.causation_id && ids.has(e.causation_id) && e.causation_id !== e.event_id).length;
    assert.equal(await page.locator('[data-testid="arrow"]').count(), caused, 'one arrow per cause in the timeline');
    // clicking a node shows its envelope and payload
    const shipped = view.timeline.find((e) => e.subject.startsWith('order/shipped/'));
    await page.click(`[data-testid="timeline-node"][data-event-id="${shipped.event_id}"]`);
    assert.equal(await page.textContent('[data-testid="panel-event-id"]'), shipped.event_id);
    assert.equal(await page.textContent('[data-testid="panel-subject"]'), shipped.subject);
    await page.waitForSelector('[data-testid="order-head"] [data-status="COMPLETED"]');
  });
});

test('c. a declined order shows its refusal and its compensations', async () => {
  const { order_id: id } = await placeOrder({ payment: { card_token: 'tok_declined' }, items: [{ flavor: 'vanilla', quantity: 1 }] });
  const view = await terminal(id);
  assert.equal(view.status, 'REJECTED');
  await withPage({}, async (page) => {
    await page.goto(`${BASE}/#/orders/${id}`);
    await page.waitForSelector('[data-testid="swimlane"]');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="timeline-node"]').length === n, view.timeline.length);
    const compensations = await page.$$eval('[data-testid="timeline-node"][data-kind="compensation"]', (ns) => ns.map((n) => n.dataset.name));
    assert.ok(compensations.includes('credit/released'), `compensations drawn: ${compensations}`);
    assert.ok(compensations.includes('inventory/released'), `compensations drawn: ${compensations}`);
    const refusals = await page.$$eval('[data-testid="timeline-node"][data-kind="refusal"]', (ns) => ns.map((n) => n.dataset.name));
    assert.ok(refusals.includes('payment/declined'), `refusals drawn: ${refusals}`);
    // styled apart: compensations dashed, refusals in another colour than steps
    const style = await page.evaluate(() => {
      const box = (kind) => getComputedStyle(document.querySelector(`[data-testid="timeline-node"][data-kind="${kind}"] rect.box`));
      return { compDash: box('compensation').strokeDasharray, compStroke: box('compensation').stroke, refusalStroke: box('refusal').stroke, stepStroke: box('step').stroke };
    });
    assert.notEqual(style.compDash, 'none', 'compensation nodes are dashed');
    assert.notEqual(style.refusalStroke, style.stepStroke, 'refusal nodes look unlike steps');
    assert.notEqual(style.compStroke, style.stepStroke, 'compensation nodes look unlike steps');
    assert.match(await page.textContent('[data-testid="order-reason"]'), /\S/);
  });
});

let parked = null; // the dead letter of test d, for test e

test('d. a malformed record is dead-lettered, listed with its reason within 5 s, and later orders still complete', async () => {
  const known = new Set((await deadLetters('')).map((d) => d.id));
  await withPage({}, async (page) => {
    await page.goto(`${BASE}/#/dead-letters`);
    await page.waitForSelector('[data-testid="dl-table"]');
    const produced = Date.now();
    await produceMalformed();
    // validation routes order/init/> and cannot read the value
    const row = await page.waitForFunction((seen) => {
      const rows = [...document.querySelectorAll('[data-testid="dl-row"][data-service="validation"]')].filter((r) => !seen.includes(r.dataset.id));
      return rows.length ? rows[0].dataset.id : null;
    }, [...known], { timeout: 5_000, polling: 100 });
    const id = await row.jsonValue();
    const took = Date.now() - produced;
    assert.ok(took <= 5_000, `listed ${took} ms after it was produced`);
    const reason = await page.textContent(`[data-testid="dl-row"][data-id="${id}"] [data-testid="dl-reason"]`);
    assert.ok(reason.trim().length > 3, `the reason is shown: ${reason}`);
    assert.equal(await page.getAttribute(`[data-testid="dl-row"][data-id="${id}"]`, 'data-status'), 'parked');
    // the API agrees
    const listed = (await deadLetters('')).find((d) => d.id === id);
    assert.ok(listed, `GET /dead-letters lists ${id}`);
    assert.equal(listed.status, 'parked');
    assert.equal(listed.topic, 'udders.order');
    assert.equal(listed.subject, 'order/init/1.1/icecream/udders/mango/sg/web');
    assert.equal(reason.trim(), String(listed.reason).trim());
    parked = listed;
    // the payload is there behind the expander
    await page.click(`[data-testid="dl-row"][data-id="${id}"] [data-testid="dl-expand"]`);
    assert.match(await page.textContent(`[data-testid="dl-detail"][data-id="${id}"] [data-testid="dl-payload"]`), /not json/);
  });
  const { order_id: later } = await placeOrder({ channel: 'pos' });
  const view = await terminal(later);
  assert.equal(view.status, 'COMPLETED', 'an order placed after the dead letter completes');
});

/** A fresh parked dead letter of validation (from a malformed record). */
async function newDeadLetter() {
  const known = new Set((await deadLetters('')).map((d) => d.id));
  await produceMalformed();
  return waitFor('a new validation dead letter', async () => (await deadLetters('?service=validation')).find((d) => !known.has(d.id)), { timeout: 10_000 });
}

test('e. replay needs the operator token: 401 and no change without it, a re-delivery with it', async () => {
  if (!parked || parked.status !== 'parked') parked = await newDeadLetter();
  const id = parked.id;
  // straight at the API, without a token
  const denied = await api(`/dead-letters/${encodeURIComponent(id)}/replay`, { method: 'POST' });
  assert.equal(denied.status, 401, `replay without a token answered ${denied.status}`);
  assert.match(String(denied.headers.get('content-type')), /problem\+json/);
  const wrong = await api(`/dead-letters/${encodeURIComponent(id)}/replay`, { method: 'POST', token: 'not-the-token' });
  assert.equal(wrong.status, 401, `replay with a wrong token answered ${wrong.status}`);
  let now = (await deadLetters('')).find((d) => d.id === id);
  assert.equal(now.status, 'parked', 'a refused replay changes nothing');
  assert.equal(now.attempts, parked.attempts, 'a refused replay changes nothing');

  await withPage({}, async (page) => {
    await page.goto(`${BASE}/#/dead-letters`);
    await page.evaluate(() => localStorage.removeItem('udders.operatorToken'));
    const row = `[data-testid="dl-row"][data-id="${id}"]`;
    await page.waitForSelector(row);
    // through the UI, without a token: the console asks for it; cancelled, nothing changes
    await page.click(`${row} [data-testid="dl-replay"]`);
    await page.waitForSelector('[data-testid="token-modal"]');
    await page.click('[data-testid="token-modal-cancel"]');
    await page.waitForSelector('[data-testid="dl-message"][data-kind="bad"]');
    assert.match(await page.textContent('[data-testid="dl-message"]'), /401/);
    now = (await deadLetters('')).find((d) => d.id === id);
    assert.equal(now.status, 'parked');
    assert.equal(now.attempts, parked.attempts);
    // with the token given in the prompt, the replay goes through and re-delivers
    await page.click(`${row} [data-testid="dl-replay"]`);
    await page.waitForSelector('[data-testid="token-modal"]');
    await page.fill('[data-testid="token-modal-token"]', OPERATOR_TOKEN);
    const answer = page.waitForResponse((r) => r.url().endsWith(`/dead-letters/${encodeURIComponent(id)}/replay`) && r.request().method() === 'POST' && r.status() !== 401);
    await page.click('[data-testid="token-modal-confirm"]');
    const res = await answer;
    const after = await waitFor('the replay to show', async () => {
      const d = (await deadLetters('')).find((x) => x.id === id);
      return d && (d.status !== 'parked' || d.attempts > parked.attempts) ? d : null;
    }, { timeout: 5_000 });
    if (res.status() === 200) {
      assert.equal(after.status, 'replayed', `200 replay left status ${after.status}`);
    } else {
      // the malformed record fails again: 409/422, still parked, one more attempt
      assert.ok([409, 422].includes(res.status()), `replay answered ${res.status()}`);
      assert.equal(after.status, 'parked');
      assert.ok(after.attempts > parked.attempts, `attempts ${parked.attempts} -> ${after.attempts}`);
    }
    assert.equal(await page.evaluate(() => localStorage.getItem('udders.operatorToken')), OPERATOR_TOKEN, 'the token is remembered');
    // the page shows the new state
    await page.selectOption('[data-testid="dl-filter-status"]', '');
    await page.waitForFunction(({ sel, status, attempts }) => {
      const r = document.querySelector(sel);
      return r && r.dataset.status === status && r.dataset.attempts === String(attempts);
    }, { sel: row, status: after.status, attempts: after.attempts }, { timeout: 5_000 });
  });
});

test('f. the portal lists the subscribers of the seed patterns, as GET /catalog/match says', async () => {
  const patterns = ['order/>', 'order/init/1.1/>', 'order/valid/*/icecream/**/sg/*', 'order/*/*/*/*/*/*/store711'];
  await withPage({}, async (page) => {
    await page.goto(`${BASE}/#/portal`);
    await page.waitForSelector('[data-testid="portal-subject"]');
    const catalog = (await api('/catalog')).body;
    const rows = await page.locator('[data-testid="portal-subject"]').count();
    assert.equal(rows, new Set(catalog.events.map((e) => e.name)).size, 'one row per domain/action');
    for (const pattern of patterns) {
      const expected = (await api(`/catalog/match?pattern=${encodeURIComponent(pattern)}`)).body;
      await page.fill('[data-testid="pattern-input"]', pattern);
      await page.press('[data-testid="pattern-input"]', 'Enter');
      await page.waitForSelector(`[data-testid="match-done"][data-pattern="${pattern}"]`);
      const shown = await page.$$eval('[data-testid="match-subscriber"]', (rs) => rs.map((r) => `${r.dataset.service}:${r.dataset.route}`));
      const want = expected.subscribers.map((s) => `${s.service}:${s.route}`);
      assert.ok(shown.length > 0, `no subscriber shown for ${pattern}`);
      assert.deepEqual([...shown].sort(), [...want].sort(), `subscribers of ${pattern}`);
      const events = await page.$$eval('[data-testid="match-event"]', (rs) => rs.map((r) => r.dataset.subject));
      assert.deepEqual([...events].sort(), expected.events.map((e) => e.subject).sort(), `events of ${pattern}`);
    }
    // a bad pattern shows the problem's detail
    const bad = 'order/>/init';
    const problem = await api(`/catalog/match?pattern=${encodeURIComponent(bad)}`);
    assert.equal(problem.status, 400);
    await page.fill('[data-testid="pattern-input"]', bad);
    await page.press('[data-testid="pattern-input"]', 'Enter');
    await page.waitForSelector('[data-testid="match-error"]');
    assert.ok((await page.textContent('[data-testid="match-error"]')).includes(problem.body.detail), 'the problem detail is shown');
    assert.equal(await page.getAttribute('[data-testid="asyncapi-link"]', 'href'), '/asyncapi.json');
  });
});

test('g. at phone width the board fits the screen', async () => {
  await terminal((await placeOrder({ customer_id: 'cust-with-a-rather-long-customer-id-0001', channel: 'store711' })).order_id);
  await withPage({ width: 390, height: 844 }, async (page) => {
    await page.goto(`${BASE}/#/`);
    await page.waitForSelector('[data-testid="order-row"]');
    await page.waitForSelector('[data-testid="count-COMPLETED"]');
    const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
    assert.ok(scrollWidth <= innerWidth, `scrollWidth ${scrollWidth} > innerWidth ${innerWidth}`);
    // the navigation folds into a menu
    assert.equal(await page.isVisible('[data-testid="nav-stuck"]'), false, 'the nav is folded');
    await page.click('[data-testid="menu-toggle"]');
    assert.equal(await page.isVisible('[data-testid="nav-stuck"]'), true, 'the menu opens');
  });
});

test('h. the live tap streams events of a new order, and pauses', async () => {
  await withPage({}, async (page) => {
    const subscribed = page.waitForRequest((r) => r.url().includes('/live?'));
    await page.goto(`${BASE}/#/tap`);
    await subscribed;
    await page.waitForTimeout(500);
    const { order_id: id } = await placeOrder({ channel: 'store711' });
    await page.waitForSelector(`[data-testid="tap-row"][data-order-id="${id}"]`, { timeout: 3_000 });
    await terminal(id);
    await page.waitForFunction((oid) => [...document.querySelectorAll('[data-testid="tap-row"]')].some((r) => r.dataset.orderId === oid && r.dataset.subject.startsWith('order/shipped/')), id, { timeout: 3_000 });
    await page.click('[data-testid="tap-pause"]');
    const shown = await page.locator('[data-testid="tap-row"]').count();
    const { order_id: other } = await placeOrder({ channel: 'store711' });
    await terminal(other);
    await page.waitForTimeout(300);
    assert.equal(await page.locator('[data-testid="tap-row"]').count(), shown, 'paused: no new rows');
    await page.click('[data-testid="tap-pause"]');
    await page.waitForSelector(`[data-testid="tap-row"][data-order-id="${other}"]`, { timeout: 2_000 });
  });
});

test('i. the place form posts an order and follows it to its end', async () => {
  await withPage({}, async (page) => {
    await page.goto(`${BASE}/#/place`);
    await page.selectOption('[data-testid="place-country"]', 'my');
    await page.selectOption('[data-testid="place-channel"]', 'shopee');
    await page.selectOption('[data-testid="place-flavor"]', 'chocolate');
    await page.click('[data-testid="place-submit"]');
    await page.waitForSelector('[data-testid="place-accepted"]');
    const id = await page.getAttribute('[data-testid="place-accepted"]', 'data-order-id');
    assert.match(id, /\S{8,}/);
    await page.waitForSelector('[data-testid="place-status"][data-status="COMPLETED"]', { timeout: 10_000 });
    const view = (await api(`/orders/${id}`)).body;
    assert.equal(view.country, 'my');
    assert.equal(view.items[0].flavor, 'chocolate');
    // a refused request shows the problem's detail
    const refused = await api('/orders', { method: 'POST', body: { customer_id: 'cust 42', channel: 'web', country: 'sg', items: [{ flavor: 'mango', quantity: 1 }], payment: { card_token: 'tok_visa' } } });
    assert.equal(refused.status, 422);
    await page.fill('[data-testid="place-customer"]', 'cust 42');
    await page.click('[data-testid="place-submit"]');
    await page.waitForSelector('[data-testid="place-problem"]');
    assert.ok((await page.textContent('[data-testid="place-problem"]')).includes(refused.body.detail), 'the problem detail is shown');
  });
});
