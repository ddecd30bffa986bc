// Crash during commit: 50 times (KEEPSTATE_CRASH_ITERATIONS; `make stress`
// runs 500), a page runs transfers of the C++ ledger
// (examples/ledger, store.call('transfer_batch')) while commits
// follow one another, and the browser is ended at a random moment (SIGKILL of
// every process, a renderer crash, or a close nobody waits for). After each
// relaunch the store must be exactly some committed version:
//  - the ledger audits (its C++ `audit`: balances sum to the total, transfer
//    counts agree) and its balances are exactly the JS replay of operations
//    1..seq, seq = transfers + rejected (a torn commit cannot pass this);
//  - the state says which version it was committed as (`meta:intent`, written
//    just before each commit) and that is the version the store reports;
//  - no acknowledged commit is lost (strict durability), and a version whose
//    start the test heard of holds exactly the transfers it had then;
//  - a store the browser lost IndexedDB for comes back from the OPFS copy
//    (counted as `recoveredFromCopy`); an unrecovered loss rejects the open.
// Before every relaunch the profile's storage (IndexedDB and OPFS folders) is
// copied to the test's output folder (`before-relaunch/`), so a failing
// relaunch can be replayed: copy it back into a profile and launch on it.
// The page reports on its console; messages still in flight when the browser
// dies are lost, so the newest versions may land without the test hearing of
// them (counted as `landedUnheard`): the checks above do not depend on them.
import { test, expect } from '../support/fixtures';
import { HARNESS_URL, LEDGER_URL, Harness } from '../support/fixtures';
import { CrashableBrowser, sleep, type KillMode } from '../support/crashable';
import { cpSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ITERATIONS = Number(process.env.KEEPSTATE_CRASH_ITERATIONS ?? 50);
const ACCOUNTS = 500;
const INITIAL = 1000;
const SEED = 20240611;
const BATCH = 200; // transfers per transfer_batch call

interface Report {
  type: 'start' | 'acked';
  version: number;
  /** Operations applied when the commit was requested, and at most in it: a mutator call in
   * flight then finishes before the commit captures (store.ts invariants). */
  seq: number;
  seqMax: number;
}

/** The files under the profile's IndexedDB folder with their sizes, for a failure message. */
function storageListing(profile: string): string {
  const root = join(profile, 'Default', 'IndexedDB');
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push(`${relative(root, path)} ${statSync(path).size}`);
    }
  };
  try {
    walk(root);
  } catch (e) {
    return `${root}: ${(e as Error).message}`;
  }
  return out.join(', ') || `${root} is empty`;
}

/** Keeps a copy of the profile's storage as it is before a relaunch (the browser is down). */
function keepStorage(profile: string, into: string): void {
  rmSync(into, { recursive: true, force: true });
  for (const part of ['IndexedDB', 'File System']) {
    const from = join(profile, 'Default', part);
    if (existsSync(from)) cpSync(from, join(into, part), { recursive: true });
  }
}

/** A random generator with a printed seed, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('killing the browser mid-commit never leaves a torn state', async ({ server, profile }, testInfo) => {
  test.setTimeout(Math.max(5 * 60_000, ITERATIONS * 6_000));
  const seed = Number(process.env.KEEPSTATE_CRASH_SEED ?? Date.now() % 1_000_000);
  testInfo.annotations.push({ type: 'seed', description: `KEEPSTATE_CRASH_SEED=${seed}` });
  const random = rng(seed);
  const modes: KillMode[] = ['sigkill', 'renderer-crash', 'close-no-wait'];

  const started = new Map<number, [number, number]>(); // version -> [seq, seqMax] it captured
  const acked = new Map<number, [number, number]>();
  let maxAcked = 0;
  let maxStarted = 0;
  const stats = {
    kills: 0, lost: 0, silentResets: 0, recoveredFromCopy: 0,
    operations: 0, inFlightAtKill: 0, landedUnheard: 0, versions: [] as number[], byMode: {} as Record<string, number>,
  };
  const kept = testInfo.outputPath('before-relaunch');

  const open = async (): Promise<{ browser: CrashableBrowser; ks: Harness }> => {
    const browser = await CrashableBrowser.launch(profile);
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on('console', (message) => {
      const text = message.text();
      if (!text.startsWith('crash-report ')) return;
      const r = JSON.parse(text.slice('crash-report '.length)) as Report;
      if (r.type === 'start') {
        started.set(r.version, [r.seq, r.seqMax]);
        maxStarted = Math.max(maxStarted, r.version);
      } else {
        acked.set(r.version, [r.seq, r.seqMax]);
        maxAcked = Math.max(maxAcked, r.version);
      }
    });
    await page.goto(`${server.origin}${HARNESS_URL}?mode=page`);
    const ks = await Harness.ready(new Harness(page, 'page'));
    await ks.call('initLedger', LEDGER_URL);
    return { browser, ks };
  };

  for (let i = 0; i <= ITERATIONS; ++i) {
    if (i > 0) keepStorage(profile, kept);
    const { browser, ks } = await open();
    const state = await ks.call('open', 'crash', { autosave: false, module: 'ledger' });
    if (i === 0) {
      expect(state).toEqual({ version: 0, dirty: false });
      expect(await ks.call('cppCreate', 'crash', ACCOUNTS, INITIAL, SEED)).toMatchObject({ accounts: ACCOUNTS, total: ACCOUNTS * INITIAL });
      await ks.call('putJSON', 'crash', 'meta:intent', 1);
      expect((await ks.call('commit', 'crash')).version).toBe(1);
      acked.set(1, [0, 0]);
      started.set(1, [0, 0]);
      maxAcked = maxStarted = 1;
    } else {
      // Exactly some committed version, never torn, no acknowledged commit lost.
      const where = `iteration ${i} (seed ${seed}): restored ${JSON.stringify(state)}, acked up to ${maxAcked}, heard of up to ${maxStarted}; storage before this relaunch: ${kept}`;
      const events: { type: string; recovered?: boolean }[] = await ks.call('events', 'crash');
      const loss = events.filter((e) => e.type === 'data-loss');
      if (loss.length > 0) {
        expect(loss, where).toMatchObject([{ recovered: true }]);
        ++stats.recoveredFromCopy;
      }
      if (state.version < maxAcked) {
        ++stats.lost;
        if (loss.length === 0) ++stats.silentResets;
      }
      // First what restore reported: a failure names the record it could not verify.
      expect(events.filter((e) => e.type === 'corruption'), where).toEqual([]);
      expect(state.dirty, where).toBe(false);
      // If acknowledged commits are gone, say what the browser kept on disk
      // (a store wiped by the browser itself looks like a new one).
      const listing = state.version < maxAcked ? ` — profile storage: ${storageListing(profile)}` : '';
      expect(state.version, where + listing).toBeGreaterThanOrEqual(maxAcked);
      expect(await ks.call('getJSON', 'crash', 'meta:intent'), where).toBe(state.version);
      const audit = await ks.call('cppAudit', 'crash');
      expect(audit, where).toMatchObject({ ok: true, total: ACCOUNTS * INITIAL, expectedTotal: ACCOUNTS * INITIAL, accounts: ACCOUNTS });
      const replay = await ks.call('cppReplay', 'crash');
      expect(replay, where).toMatchObject({ ok: true });
      const known = acked.get(state.version) ?? started.get(state.version);
      if (known !== undefined) {
        expect(replay.ops, where).toBeGreaterThanOrEqual(known[0]);
        expect(replay.ops, where).toBeLessThanOrEqual(known[1]);
      }
      stats.operations = replay.ops;
      if (state.version > maxStarted) ++stats.landedUnheard;
      stats.versions.push(state.version);
      // Versions above the restored one never landed: forget them (their numbers may come back).
      for (const v of [...started.keys()]) if (v > state.version) started.delete(v);
      maxStarted = state.version;
      maxAcked = state.version;
    }
    if (i === ITERATIONS) {
      const path = testInfo.outputPath('after-last-relaunch.png');
      await ks.page.screenshot({ path, fullPage: true });
      await testInfo.attach('harness after the last relaunch', { path, contentType: 'image/png' });
      await browser.kill('close-no-wait');
      break;
    }

    // Transfers in flight and commits back to back, until the browser dies.
    ks.page.evaluate(([b]) => (window as any).ks.crashLoop('crash', b, true), [BATCH] as const).catch(() => undefined);
    await sleep(30 + random() * 400);
    const mode = modes[Math.floor(random() * modes.length)]!;
    stats.byMode[mode] = (stats.byMode[mode] ?? 0) + 1;
    if (maxStarted > maxAcked) ++stats.inFlightAtKill;
    ++stats.kills;
    await browser.kill(mode);
  }

  testInfo.annotations.push({ type: 'crash stats', description: JSON.stringify({ ...stats, versions: undefined, finalVersion: stats.versions.at(-1) }) });
  console.log(`crash test (seed ${seed}): ${JSON.stringify({ ...stats, versions: stats.versions.join(' ') })}`);
  // The kills must have hit commits in flight, or this test proved nothing.
  expect(stats.inFlightAtKill).toBeGreaterThanOrEqual(ITERATIONS / 2);
  // Commits made progress across the iterations.
  expect(stats.versions.at(-1)!).toBeGreaterThan(ITERATIONS);
});
