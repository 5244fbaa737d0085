// Takes the console's screenshots (docs/screenshots/*.png) against a running
// `udders up` (UDDERS_URL, UDDERS_BROKER): run by scripts/screenshots, which
// starts one. Posts a handful of orders and one malformed record first.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASE, launch, openPage, api, placeOrder, terminal, produceMalformed, deadLetters, waitFor } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.env.SCREENSHOTS_DIR || path.join(here, '../../docs/screenshots'));
fs.mkdirSync(out, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  // Some history first: every path of the saga.
  const happy = [];
  const mixes = [
    { country: 'sg', channel: 'lazada', items: [{ flavor: 'mango', quantity: 2 }] },
    { country: 'my', channel: 'shopee', items: [{ flavor: 'chocolate', quantity: 1 }, { flavor: 'vanilla', quantity: 2 }], delivery: { postal_code: '50450' } },
    { country: 'kr', channel: 'store711', items: [{ flavor: 'rumraisin', quantity: 3 }], delivery: { postal_code: '04524' } },
    { country: 'th', channel: 'web', items: [{ flavor: 'vanilla', quantity: 1 }], customer_id: 'cust-7', delivery: { postal_code: '10110' } },
    { country: 'id', channel: 'pos', items: [{ flavor: 'mango', quantity: 4 }], customer_id: 'cust-19', delivery: { postal_code: '10110' } },
  ];
  for (const m of mixes) happy.push((await placeOrder(m)).order_id);
  const declined = (await placeOrder({ country: 'sg', channel: 'web', payment: { card_token: 'tok_declined' }, items: [{ flavor: 'vanilla', quantity: 1 }] })).order_id;
  const invalid = (await placeOrder({ country: 'us', channel: 'web', schema_version: '1.2', delivery: { postal_code: 'abc' } })).order_id;
  const broke = (await placeOrder({ customer_id: 'cust-broke', channel: 'lazada' })).order_id;
  const undeliverable = (await placeOrder({ country: 'sg', channel: 'store711', items: [{ flavor: 'rumraisin', quantity: 1 }], delivery: { postal_code: '00000' } })).order_id;
  const durian = (await placeOrder({ country: 'th', channel: 'shopee', items: [{ flavor: 'durian', quantity: 1 }] })).order_id;
  const before = new Set((await deadLetters('')).map((d) => d.id));
  await produceMalformed();
  for (const id of [...happy, declined, invalid, broke, undeliverable, durian]) await terminal(id);
  await waitFor('the dead letter', async () => (await deadLetters('')).some((d) => !before.has(d.id)), { timeout: 10_000 }).catch((e) => console.warn(String(e)));
  await sleep(1500);

  const browser = await launch();
  const shot = async (name, hash, { width = 1280, height = 800, full = false, prepare } = {}) => {
    const page = await openPage(browser, { width, height });
    await page.goto(`${BASE}/${hash}`);
    await page.waitForLoadState('networkidle').catch(() => {});
    await sleep(1200);
    if (prepare) await prepare(page);
    await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: full });
    if (page.errors.length) console.warn(`${name}: page errors: ${page.errors.join('; ')}`);
    await page.close();
    console.log(`docs/screenshots/${name}.png`);
  };

  await shot('board', '#/');
  await shot('order-happy', `#/orders/${happy[0]}`, {
    full: true,
    prepare: async (page) => {
      await page.waitForSelector('[data-testid="timeline-node"]');
      await page.click('[data-testid="timeline-node"][data-name="payment/captured"]');
      await sleep(300);
    },
  });
  await shot('order-declined', `#/orders/${declined}`, {
    full: true,
    prepare: async (page) => {
      await page.waitForSelector('[data-testid="timeline-node"]');
      await page.click('[data-testid="timeline-node"][data-kind="compensation"]');
      await sleep(300);
    },
  });
  await shot('order-undeliverable', `#/orders/${undeliverable}`, { full: true });
  // Stuck orders only exist while sagas run: a burst of orders, shot while
  // they are in flight, with the threshold at 0 s.
  await shot('stuck', '#/stuck?older_than=0', {
    prepare: async (page) => {
      const flavors = ['vanilla', 'chocolate', 'mango', 'rumraisin'];
      const countries = ['sg', 'my', 'kr', 'us', 'id', 'th'];
      const burst = [];
      for (let i = 0; i < 150; i++) {
        burst.push(placeOrder({ country: countries[i % 6], channel: ['web', 'pos', 'lazada', 'shopee', 'store711'][i % 5], items: [{ flavor: flavors[i % 4], quantity: 1 + (i % 3) }], delivery: { postal_code: '10110' } }));
      }
      await Promise.all(burst);
      // What the API said while they ran, held for the picture (the page
      // refreshes every 2 s and the sagas end within a second).
      const snapshot = await api('/orders/stuck?older_than=0s');
      await page.route('**/orders/stuck?*', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(snapshot.body) }));
      await page.click('[data-testid="stuck-apply"]');
      await page.waitForSelector('[data-testid="stuck-group"]', { timeout: 2_000 }).catch(() => console.warn('stuck: no order in flight any more'));
    },
  });
  await shot('dead-letters', '#/dead-letters', {
    prepare: async (page) => {
      await page.click('[data-testid="dl-row"][data-service="validation"] [data-testid="dl-expand"]', { timeout: 5_000 })
        .catch(() => page.click('[data-testid="dl-expand"]', { timeout: 5_000 }))
        .catch(() => console.warn('dead-letters: nothing to expand'));
      await sleep(300);
    },
  });
  await shot('portal', '#/portal', {
    full: true,
    prepare: async (page) => {
      await page.fill('[data-testid="pattern-input"]', 'order/valid/*/icecream/**/sg/*');
      await page.press('[data-testid="pattern-input"]', 'Enter');
      await page.waitForSelector('[data-testid="match-done"]');
      await page.click('[data-testid="portal-subject"][data-name="order/valid"]');
      await sleep(300);
    },
  });
  await shot('tap', '#/tap', {
    prepare: async (page) => {
      await page.waitForSelector('[data-testid="live-indicator"][data-state="on"]', { timeout: 10_000 }).catch(() => {});
      const ids = [];
      for (const m of [{ channel: 'store711' }, { channel: 'web', payment: { card_token: 'tok_declined' } }, { channel: 'lazada', country: 'my' }]) ids.push((await placeOrder(m)).order_id);
      for (const id of ids) await terminal(id);
      await sleep(800);
    },
  });
  await shot('place', '#/place', {
    full: true,
    prepare: async (page) => {
      await page.click('[data-testid="place-preset"]:has-text("Card declined")');
      await page.click('[data-testid="place-submit"]');
      await page.waitForSelector('[data-testid="place-status"][data-status="REJECTED"]', { timeout: 15_000 });
      await sleep(800);
    },
  });
  await shot('board-phone', '#/', { width: 390, height: 844, full: true });
  await browser.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
