// bench/sync: the sync figures of issue 24, on loopback, against the ledger example's server
// (build/native-release) started here on 127.0.0.1 — over SQLite in a temporary directory,
// and over PostgreSQL when KEEPSTATE_TEST_POSTGRES names a cluster (scripts/with-postgres) —
// and stopped at the end, also when a figure fails. Each figure is set against a limit or a
// competitor measured in the same run (docs: bench/README.md, "Sync").
//
//   make bench-sync                                   (builds, then runs this under scripts/with-postgres)
//   node bench/sync/run.mjs [--quick]                 (built trees; --quick: smaller figures, for a try)
//   node bench/sync/run.mjs --only throughput         (figure 2 alone, on SQLite and, if named, PostgreSQL)
//   KEEPSTATE_SYNC_SERVER=<binary> node bench/sync/run.mjs ...   (another build's server)
//
// Prints a table and writes bench/results/sync.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { serverBinary, startServer } from '../../js-bindings/test/support/sync-server.mjs';
import { measureBigSpace } from './big-space.mjs';
import { measureCatchUp } from './catchup.mjs';
import { measureLatency } from './latency.mjs';
import { measureSockets } from './sockets.mjs';
import { bytes, count, ms, rate, ratio } from './stats.mjs';
import { fdatasyncRate, measureThroughput } from './throughput.mjs';
import { TOKEN } from './wire.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const quick = process.argv.includes('--quick');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt === -1 ? null : process.argv[onlyAt + 1];
if (only !== null && only !== 'throughput') throw new Error(`--only ${only}: the figure that can run alone is throughput`);
const postgres = process.env.KEEPSTATE_TEST_POSTGRES;
// KEEPSTATE_SYNC_SERVER: another build's server binary (a before/after comparison, run back to back).
const binary = process.env.KEEPSTATE_SYNC_SERVER ?? serverBinary('native-release');

function git(args) {
  try {
    return execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** PostgreSQL's fsync setting, as the server's cluster has it (durability of its commits). */
function postgresFsync() {
  try {
    return execFileSync('psql', [postgres, '-Atc', 'SHOW fsync'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function compilersRunning() {
  try {
    return execFileSync('pgrep', ['-c', '-f', 'cc1plus|em\\+\\+|clang'], { encoding: 'utf8' }).trim() !== '0';
  } catch {
    return false; // pgrep exits 1 when nothing matches
  }
}

async function withServer(options, fn) {
  const server = await startServer({ tokens: `* ${TOKEN}\n`, binary, ...options });
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}

const verdict = (met) => (met ? 'met' : '**missed**');

function table(r) {
  const rows = [];
  // --only throughput: figure 2 alone; the others are left out of the table.
  const l = r.latency;
  if (l) rows.push([
    `1. transfer on A reaches B's watch, p50 (${l.transfers} transfers)`,
    ms(l.p50),
    `raw push → its poke ${ms(l.floorP50)}; HTTP round trip ${ms(l.httpP50)}`,
    ratio(l.p50 / l.floorP50),
    `≤ 10 ms: ${verdict(l.p50 <= 10)}`,
  ]);
  if (l) rows.push(['1. the same, p99', ms(l.p99), `raw push → its poke ${ms(l.floorP99)}`, ratio(l.p99 / l.floorP99), `≤ 50 ms: ${verdict(l.p99 <= 50)}`]);
  for (const [db, t] of Object.entries(r.throughput)) {
    if (t === null) {
      rows.push([`2. push throughput, ${db}`, 'not run', 'no KEEPSTATE_TEST_POSTGRES (make bench-sync runs it under scripts/with-postgres)', '', '']);
      continue;
    }
    const [big, one] = t.runs;
    rows.push([
      `2. push throughput, ${db}, 10 clients, 100 transfers per push`,
      `${rate(big.perSecond)} (${count(big.perCommit)} per commit)`,
      `${rate(big.commitsPerSecond)} commits vs disk ${rate(r.fdatasync)} fdatasync`,
      ratio(big.commitsPerSecond / r.fdatasync),
      `≥ 20,000/s: ${verdict(big.perSecond >= 20_000)}`,
    ]);
    rows.push([
      `2. push throughput, ${db}, 10 clients, 1 transfer per push`,
      `${rate(one.perSecond)} (${one.perCommit.toFixed(1)} per commit)`,
      `${rate(one.pushesPerSecond)} pushes vs HTTP no-op (empty push) ${rate(t.noop.perSecond)}`,
      ratio(one.pushesPerSecond / t.noop.perSecond),
      `≥ 20,000/s: ${verdict(one.perSecond >= 20_000)}`,
    ]);
  }
  const b = r.bigSpace;
  if (b) rows.push([
    `3. pull after a 1 KiB change, ${b.mib} MiB space`,
    `${ms(b.changePull.ms)}, ${bytes(b.changePull.sent)} sent, ${bytes(b.changePull.received)} received`,
    `snapshot download ${ms(b.firstPull.plainMs)}, ${bytes(b.snapshotBytes)}; raw pull ${ms(b.changePull.rawMs)}`,
    `bytes ÷ ${count(b.snapshotBytes / (b.changePull.sent + b.changePull.received))}, time ÷ ${(b.firstPull.plainMs / b.changePull.ms).toFixed(0)}`,
    '',
  ]);
  const u = r.catchUp;
  if (u) rows.push([
    `4. offline for ${count(u.mutations)} mutations, catch up`,
    `${ms(u.ms)}, ${bytes(u.sent)} sent, ${bytes(u.received)} received`,
    `raw pushes of ${count(u.mutations)} transfers ${ms(u.rawMs)}`,
    ratio(u.ms / u.rawMs),
    '',
  ]);
  const f = b?.firstPull;
  if (f) rows.push([
    `5. new device's first pull, ${b.mib} MiB (open + sync, fake IndexedDB)`,
    `${ms(f.deviceMs)} (openStore ${ms(f.deviceOpenMs)})`,
    `plain HTTP download ${ms(f.plainMs)}`,
    ratio(f.deviceMs / f.plainMs),
    `≤ 1.5x: ${verdict(f.deviceMs / f.plainMs <= 1.5)}`,
  ]);
  if (f) rows.push([`5. the same on memory storage`, ms(f.memoryMs), `plain HTTP download ${ms(f.plainMs)}`, ratio(f.memoryMs / f.plainMs), '']);
  const s = r.sockets;
  if (s) rows.push([
    `6. poke sockets held by one server`,
    `${count(s.count)}, all poked ${ms(s.allMs)} after the push; +${bytes(s.perClient)} RSS per client`,
    `RSS ${bytes(s.rssBefore)} → ${bytes(s.rssAfter)}`,
    '',
    `≥ 1,000: ${verdict(s.poked >= 1000)}`,
  ]);
  const head = ['figure', 'keepstate', 'limit / competitor, same run', 'ratio (keepstate ÷ limit)', 'target'];
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

// Interrupted: exit through 'exit', where sync-server.mjs kills the servers it started.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

/** Figure 2's CPU: where the time of each run went (the server process; this process, the 10 clients). */
function cpuTable(r) {
  const rows = [];
  const us = (seconds, n) => `${((seconds / n) * 1e6).toFixed(0)} µs`;
  for (const [db, t] of Object.entries(r.throughput)) {
    if (t === null) continue;
    for (const run of t.runs) {
      const pushes = run.mutations / run.batch;
      rows.push([`${db}, ${run.batch} per push`, `${run.seconds.toFixed(2)} s`, `${run.serverCpu.toFixed(2)} s (${us(run.serverCpu, pushes)}/push, ${us(run.serverCpu, run.mutations)}/mutation)`, `${run.clientCpu.toFixed(2)} s`]);
    }
    rows.push([`${db}, empty push`, `${t.noop.seconds.toFixed(2)} s`, `${t.noop.serverCpu.toFixed(2)} s (${us(t.noop.serverCpu, t.noop.requests)}/push)`, `${t.noop.clientCpu.toFixed(2)} s`]);
  }
  const head = ['figure 2 run', 'wall', 'server CPU', 'client CPU (10 clients, Node)'];
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

async function main() {
  if (compilersRunning()) console.warn('bench/sync: a compiler is running on this machine: the figures will be slower than they should');
  const results = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    loadAverage: os.loadavg()[0],
    quick,
    only,
    postgresFsync: postgres === undefined ? null : postgresFsync(),
    fdatasync: fdatasyncRate(),
    throughput: { SQLite: null, PostgreSQL: null },
  };
  await withServer({}, async (server) => {
    console.log(`SQLite server ${server.url} (pid ${server.pid})`);
    if (only === 'throughput') {
      results.throughput.SQLite = await measureThroughput(server.url, server.pid, 'sqlite', { quick });
      return;
    }
    results.sockets = await measureSockets(server.url, server.pid, { count: 1000 });
    console.log(`  6. sockets: ${results.sockets.poked} poked`);
    results.latency = await measureLatency(server.url, { transfers: quick ? 50 : 200 });
    console.log(`  1. latency: p50 ${ms(results.latency.p50)}`);
    results.throughput.SQLite = await measureThroughput(server.url, server.pid, 'sqlite', { quick });
    console.log(`  2. throughput: ${rate(results.throughput.SQLite.runs[0].perSecond)}`);
    results.catchUp = await measureCatchUp(server.url, { mutations: 10_000 });
    console.log(`  4. catch-up: ${ms(results.catchUp.ms)}`);
    results.bigSpace = await measureBigSpace(server.url, { mib: quick ? 16 : 64, runs: quick ? 1 : 3 });
    console.log(`  3, 5. big space: first pull ${ms(results.bigSpace.firstPull.deviceMs)}`);
  });
  if (postgres !== undefined) {
    await withServer({ postgres }, async (server) => {
      console.log(`PostgreSQL server ${server.url} (pid ${server.pid}, fsync ${results.postgresFsync})`);
      results.throughput.PostgreSQL = await measureThroughput(server.url, server.pid, 'postgres', { quick });
      console.log(`  2. throughput: ${rate(results.throughput.PostgreSQL.runs[0].perSecond)}`);
    });
  }
  const text = table(results);
  console.log(`\nbench/sync, ${results.date}, commit ${results.commit}, ${results.machine}, load ${results.loadAverage.toFixed(2)}`);
  if (results.postgresFsync !== null) console.log(`PostgreSQL fsync: ${results.postgresFsync}`);
  console.log(text);
  console.log(`\n${cpuTable(results)}`);
  mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
  const out = new URL(`../results/sync${only ? `-${only}` : ''}${quick ? '-quick' : ''}.json`, import.meta.url);
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nJSON: ${fileURLToPath(out)}`);
}

await main();
