// Figure 1 in a browser: a transfer made on device A reaches device B's watch listener, where
// A and B are two headless Chromium profiles (two devices) on the demo page's origin, each with
// a synced ledger store (IndexedDB, the OPFS copy, strict: the package's defaults), against the
// ledger's sync server (native-release, SQLite in a temporary directory) started here on
// 127.0.0.1 and stopped at the end, also when the run fails. Times are taken in the pages
// (performance.timeOrigin + performance.now(), one clock on one machine): from A's call to
// B's listener, and on the way A's commit, A's push (fetch out and back) and the poke reaching
// B's socket.
//
// The floor in the same run, the same path with no store on either side: page A's fetch of a
// raw push of one transfer, and its poke reaching a raw WebSocket in page B.
//
//   node bench/sync/browser.mjs [--runs N]       (default 200 transfers, after 10 of warm-up)
//
// Prints a table and writes bench/results/sync-browser.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer as startWebServer } from '../../e2e/server.mjs';
import { serverBinary, startServer as startSyncServer } from '../../js-bindings/test/support/sync-server.mjs';
import { LAUNCH, loadAverage, option } from '../browser/launch.mjs';
import { encodeTransfer } from './devices.mjs';
import { ms, percentile, ratio } from './stats.mjs';
import { clientId, mutation, pushBody } from './wire.mjs';

const RUNS = Number(option('--runs') ?? 200);
const WARMUP = 10;
const ACCOUNTS = 1000;
const SPACE = 'bench';
const TOKEN = 'bench-token';

// Runs in each page: a synced ledger store, the times of what happens, a raw poke socket.
const DEVICE = () => {
  window.device = {
    times: {},
    mark(what) {
      this.times[what] ??= performance.timeOrigin + performance.now();
    },
    async open(url, space, token) {
      const ks = await import('keepstate');
      const ledger = await import('/ledger/client.mjs');
      const fetched = window.fetch.bind(window);
      window.fetch = async (...args) => {
        const what = String(args[0]).split('/').pop();
        this.mark(`${what} sent`);
        const response = await fetched(...args);
        this.mark(`${what} answered`);
        return response;
      };
      const Socket = window.WebSocket;
      window.WebSocket = class extends Socket {
        constructor(...args) {
          super(...args);
          this.addEventListener('message', () => window.device.mark('poked'));
        }
      };
      this.store = await ks.openStore('bench-device', { module: ledger.ledgerModule, autosave: false, sync: { url, space, token } });
      this.ledger = new ledger.Ledger(this.store);
      this.store.watch({ key: ledger.LEDGER_KEY }, (e) => e.source !== 'local' && this.mark('heard'));
      this.transfers = () => this.ledger.totals().transfers;
    },
    async transfer(from, to) {
      this.times = {};
      this.mark('call');
      await this.ledger.transfer(from, to, 1);
      await this.store.commit();
      this.mark('committed');
    },
    // The floor: a raw push out of this page, a raw poke socket in the other.
    listen(url, token) {
      return new Promise((resolve, reject) => {
        this.raw = new WebSocket(url);
        this.raw.onopen = () => this.raw.send(JSON.stringify({ token }));
        this.raw.onmessage = (event) => {
          this.rawPoked = { version: JSON.parse(event.data).version, at: performance.timeOrigin + performance.now() };
          resolve();
        };
        this.raw.onerror = reject;
      });
    },
    async rawPush(url, token, body) {
      const at = performance.timeOrigin + performance.now();
      const response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body });
      if (!response.ok) throw new Error(`raw push: ${response.status} ${await response.text()}`);
      return { at, version: (await response.json()).version };
    },
  };
};

async function main() {
  const web = await startWebServer({ port: 0 });
  const origin = web.url.replace(/\/$/, '');
  const sync = await startSyncServer({
    binary: serverBinary('native-release'),
    tokens: `${SPACE} ${TOKEN}\n`,
    args: ['--allow-origin', origin],
  });
  const profiles = [];
  const contexts = [];
  try {
    const pages = [];
    for (const name of ['a', 'b']) {
      const profile = await mkdtemp(join(tmpdir(), `keepstate-bench-sync-${name}-`));
      profiles.push(profile);
      const context = await chromium.launchPersistentContext(profile, LAUNCH);
      contexts.push(context);
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(`${origin}/?store=bench-idle`); // the demo page: its import map; its own store stays idle
      await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
      await page.evaluate(DEVICE);
      await page.evaluate(([url, space, token]) => window.device.open(url, space, token), [sync.url, SPACE, TOKEN]);
      pages.push(page);
    }
    const [a, b] = pages;
    await a.evaluate(async (n) => {
      await window.device.ledger.openAccounts(0, n, 1e9);
      await window.device.store.commit();
      await window.device.store.syncNow();
    }, ACCOUNTS);
    await b.evaluate(() => window.device.store.syncNow());
    const version = `Chromium ${await a.evaluate(() => navigator.userAgent.match(/Chrome\/(\d+)/)?.[1] ?? '?')}`;

    // keepstate: A's call to B's watch listener, one transfer at a time.
    const rows = [];
    for (let i = 0; i < WARMUP + RUNS; ++i) {
      const before = await b.evaluate(() => {
        window.device.times = {};
        return window.device.transfers();
      });
      await a.evaluate(([from, to]) => window.device.transfer(from, to), [i % ACCOUNTS, (i * 7 + 1) % ACCOUNTS]);
      await b.waitForFunction((n) => window.device.transfers() > n && window.device.times.heard !== undefined, before, { polling: 2 });
      // A's round may still run after B heard: the next transfer waits until both devices are
      // idle (A's push answered and its round's result committed, B at the same version), so
      // that each is timed alone.
      const idle = () => {
        const s = window.device.store.sync;
        return s.pending === 0 && !window.device.store.dirty && s.error === null && { version: s.serverVersion, answered: window.device.times['push answered'] !== undefined };
      };
      await a.waitForFunction(`(${idle})()?.answered === true`, null, { polling: 2 });
      const { version } = await a.evaluate(idle);
      await b.waitForFunction(`(${idle})()?.version >= ${version}`, null, { polling: 2 });
      const [timesA, timesB] = [await a.evaluate(() => window.device.times), await b.evaluate(() => window.device.times)];
      if (i >= WARMUP) {
        const t0 = timesA.call;
        rows.push({
          total: timesB.heard - t0,
          committed: timesA.committed - t0,
          pushSent: timesA['push sent'] - t0,
          pushAnswered: timesA['push answered'] - t0,
          poked: timesB.poked - t0,
          pulledByA: timesA['pull sent'] !== undefined,
          pulledByB: timesB['pull sent'] !== undefined,
        });
      }
    }

    // The floor: a raw push from page A, its poke on a raw socket in page B.
    const pokeUrl = `${sync.url.replace(/^http/, 'ws')}/v1/spaces/${SPACE}/poke`;
    const pushUrl = `${sync.url}/v1/spaces/${SPACE}/push`;
    await b.evaluate(([url, token]) => window.device.listen(url, token), [pokeUrl, TOKEN]);
    const raw = clientId('raw');
    const floor = [];
    for (let i = 0; i < WARMUP + RUNS; ++i) {
      const body = pushBody(raw, [mutation(i + 1, 'transfer', encodeTransfer(i % ACCOUNTS, (i + 3) % ACCOUNTS, 1))]);
      const pushed = await a.evaluate(([url, token, body]) => window.device.rawPush(url, token, body), [pushUrl, TOKEN, body]);
      await b.waitForFunction((v) => window.device.rawPoked.version >= v, pushed.version, { polling: 2 });
      const poked = await b.evaluate(() => window.device.rawPoked.at);
      if (i >= WARMUP) floor.push(poked - pushed.at);
    }

    const col = (key) => rows.map((r) => r[key]);
    const result = {
      when: new Date().toISOString(),
      browser: version,
      runs: RUNS,
      load: loadAverage(),
      p50: percentile(col('total'), 50),
      p99: percentile(col('total'), 99),
      phases: Object.fromEntries(['committed', 'pushSent', 'pushAnswered', 'poked'].map((k) => [k, percentile(col(k), 50)])),
      phasesP99: Object.fromEntries(['committed', 'pushSent', 'pushAnswered', 'poked'].map((k) => [k, percentile(col(k), 99)])),
      rows,
      pullsByA: rows.filter((r) => r.pulledByA).length,
      pullsByB: rows.filter((r) => r.pulledByB).length,
      floorP50: percentile(floor, 50),
      floorP99: percentile(floor, 99),
    };
    console.log(`\nbench/sync in a browser (${result.browser}), ${RUNS} transfers, load ${result.load}`);
    console.log('| figure | keepstate | floor, same run: a raw push from page A → its poke in page B | ratio | target |');
    console.log('| --- | --- | --- | --- | --- |');
    console.log(`| 1. a transfer on A reaches B's watch, p50 | ${ms(result.p50)} | ${ms(result.floorP50)} | ${ratio(result.p50 / result.floorP50)} | ≤ 10 ms: ${result.p50 <= 10 ? 'met' : '**missed**'} |`);
    console.log(`| 1. the same, p99 | ${ms(result.p99)} | ${ms(result.floorP99)} | ${ratio(result.p99 / result.floorP99)} | ≤ 50 ms: ${result.p99 <= 50 ? 'met' : '**missed**'} |`);
    const p = result.phases;
    console.log(`\nOn the way (medians from A's call): A's commit resolved ${ms(p.committed)}, A's push sent ${ms(p.pushSent)}, ` +
      `the poke on B's socket ${ms(p.poked)}, A's push answered ${ms(p.pushAnswered)}; ` +
      `pulls: A in ${result.pullsByA} of ${RUNS} transfers, B in ${result.pullsByB}.`);
    mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
    const out = new URL('../results/sync-browser.json', import.meta.url);
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`JSON: ${out.pathname}`);
  } finally {
    for (const c of contexts) await c.close().catch(() => {});
    await sync.stop();
    await web.close();
    for (const p of profiles) await rm(p, { recursive: true, force: true });
  }
}

await main();
