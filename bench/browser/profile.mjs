// bench/browser/profile.mjs: where the time of one page-side operation of a
// contender goes, from a Chrome DevTools CPU profile (Playwright's CDP
// session, Profiler.start/stop) — issue 17's "profile first".
//
//   node bench/browser/profile.mjs [--contender keepstate] [--op transfersJs] [--n 200000] [--setup ledgerSetup] [--top 25]
//
// Runs the setup op once, a warm-up, then the op under the profiler; prints
// the self time of the top functions (ms and % of the profiled time) and
// writes the .cpuprofile (open it in DevTools) to bench/results/.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ROUTES, startServer } from '../../e2e/server.mjs';
import { LAUNCH, option } from './launch.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const contender = option('--contender') ?? 'keepstate';
const op = option('--op') ?? 'transfersJs';
const setupOp = option('--setup') ?? (op === 'apiRun' ? 'apiSetup' : 'ledgerSetup');
const n = Number(option('--n') ?? 200_000);
const top = Number(option('--top') ?? 25);
ROUTES.unshift(['/bench-build/', join(repo, 'build/wasm-release/bench/browser')], ['/bench/', join(repo, 'bench/browser/pages')]);

const server = await startServer({ port: 0 });
const profileDir = await mkdtemp(join(os.tmpdir(), 'keepstate-profile-'));
const context = await chromium.launchPersistentContext(profileDir, LAUNCH);
try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${server.url}bench/`);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  const run = (o, a) => page.evaluate(([c, o2, a2]) => window.bench.run(c, o2, a2), [contender, o, a]);
  const args = { n, accounts: 1_000_000, seed: 1000, batch: 65_536, valueBytes: 256, name: `profile-${op}` };
  await run(setupOp, args);
  await run(op, { ...args, n: Math.min(n, 4096), seed: 7 });
  const cdp = await context.newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
  await cdp.send('Profiler.start');
  const result = await run(op, args);
  const { profile } = await cdp.send('Profiler.stop');
  // Self time per function: each sample's node, weighted by its time delta.
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  console.log(`${contender}.${op} n=${n}: ${JSON.stringify(result)}`);
  console.log(`profiled ${total.toFixed(0)} ms; self time, top ${top}:`);
  for (const [k, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${ms.toFixed(1).padStart(9)} ms ${(100 * ms / total).toFixed(1).padStart(5)} %  ${k}`);
  }
  await mkdir(join(repo, 'bench/results'), { recursive: true });
  const file = join(repo, `bench/results/profile-${contender}-${op}.cpuprofile`);
  await writeFile(file, JSON.stringify(profile));
  console.log(`profile: ${file}`);
} finally {
  await context.close();
  await server.close();
  await rm(profileDir, { recursive: true, force: true });
}
