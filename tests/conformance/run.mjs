// The determinism conformance suite (docs/sync.md, "Determinism"): the same
// mutation sequences run natively (keepstate-conformance, g++) and in wasm
// (the package under Node, memory storage) must give the same outcomes, the
// same states, and, for every 50th seed, the same pages. Fails loudly with
// the first differing seed, mutation index and key.
//
//   node tests/conformance/run.mjs [--count N] [--seed S] [--native PATH]
//                                  [--ledger DIR] [--keep DIR] [--no-self-check]
//
// Seeds S .. S+N-1 (default 1 .. 1000). --native: the native runner (default
// build/native-debug/tests/conformance/keepstate-conformance); --ledger: the
// wasm-release build's examples/ledger folder (client.mjs, js/ledger.js);
// --keep: leave the sequence file, the native output and the snapshot files
// there (otherwise they go to a temporary folder, kept only on failure).
// `make test` runs 1,000 sequences, `make conformance` 10,000.
//
// Before it reports a pass it checks that it can fail (self-check): a
// flipped hash, a sequence run with one mutation dropped, and a page with a
// flipped byte must each be caught, the dropped mutation at its index.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { makeGenerator, PAGE_EVERY } from './generate.mjs';
import { comparePages, pageCount } from './pages.mjs';
import { encodeSequences } from './sequences.mjs';
import { makeWasmRunner } from './wasm.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    native: { type: 'string', default: join(root, 'build/native-debug/tests/conformance/keepstate-conformance') },
    ledger: { type: 'string', default: join(root, 'build/wasm-release/examples/ledger') },
    keep: { type: 'string' },
    'no-self-check': { type: 'boolean', default: false },
  },
});
const count = Number(opts.count);
const firstSeed = Number(opts.seed);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(firstSeed) || firstSeed < 0 || firstSeed + count > 2 ** 32) {
  throw new Error('--count must be >= 1 and --seed >= 0, with seeds below 2^32');
}
for (const [what, path] of [['the native runner', opts.native], ['the ledger module', join(opts.ledger, 'client.mjs')]]) {
  if (!existsSync(path)) throw new Error(`${what} is missing (${path}): make build-native-debug build-wasm-release`);
}

const keepstate = await import(join(root, 'js-bindings/dist/node.js'));
const { ledgerModule } = await import(join(opts.ledger, 'client.mjs'));
const schema = await import(join(opts.ledger, 'js/ledger.js'));
const generator = makeGenerator(schema);
const wasm = makeWasmRunner(keepstate, ledgerModule);

const work = opts.keep ? (mkdirSync(opts.keep, { recursive: true }), resolve(opts.keep)) : mkdtempSync(join(tmpdir(), 'keepstate-conformance-'));
const pagesDir = join(work, 'pages');
mkdirSync(pagesDir, { recursive: true });
const clock = () => performance.now();
const hex = (bytes) => Buffer.from(bytes).toString('hex');

/** A failure of the suite: printed with how to reproduce it. */
class Mismatch extends Error {}

// --- The native side -------------------------------------------------------

function native(args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(opts.native, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [], err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`keepstate-conformance ${args[0]} exited with ${code}: ${Buffer.concat(err)}`));
      else resolvePromise(Buffer.concat(out).toString('utf8'));
    });
  });
}
const lines = (text) => text.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));

async function nativeRun(file) {
  const out = new Map();
  for (const [seed, mutations, outcomes, state, entries] of lines(await native(['run', file, '--pages', pagesDir]))) {
    out.set(Number(seed), { mutations: Number(mutations), outcomes, state, entries: Number(entries) });
  }
  return out;
}
const nativeTrace = async (file, seed) =>
  lines(await native(['trace', file, String(seed)])).map(([, code, outcome, state]) => ({ code, outcome, state }));
const nativeDump = async (file, seed, stop) =>
  lines(await native(['dump', file, String(seed), String(stop)])).map(([k, v]) => [k, v ?? '']);

// --- Comparing --------------------------------------------------------------

/** The first sequence whose native and wasm results differ: { seed, field, native, wasm }, or null. */
function firstDifference(sequences, nativeResults, wasmResults) {
  for (const { seed } of sequences) {
    const n = nativeResults.get(seed), w = wasmResults.get(seed);
    if (n === undefined) return { seed, field: 'result', native: 'none', wasm: 'some' };
    for (const field of ['outcomes', 'state', 'entries']) {
      if (n[field] !== w[field]) return { seed, field, native: n[field], wasm: w[field] };
    }
  }
  return null;
}

const keyText = (keyHex) => {
  try {
    return JSON.stringify(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(keyHex, 'hex')));
  } catch {
    return `0x${keyHex}`;
  }
};

/** The first key whose entry differs between two dumps ([[key hex, value hex]], key order), described. */
function firstKeyDifference(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); ++i) {
    const [ka, va] = a[i] ?? [], [kb, vb] = b[i] ?? [];
    if (ka === kb && va === vb) continue;
    if (ka === kb) {
      let byte = 0;
      while (va.slice(2 * byte, 2 * byte + 2) === vb.slice(2 * byte, 2 * byte + 2)) ++byte;
      return `key ${keyText(ka)}: the values (native ${va.length / 2} bytes, wasm ${vb.length / 2}) differ from byte ${byte}`;
    }
    // The smaller key is the one the other side lacks (keys compare as bytes: hex of equal-length prefixes orders alike).
    const onlyNative = kb === undefined || (ka !== undefined && Buffer.compare(Buffer.from(ka, 'hex'), Buffer.from(kb, 'hex')) < 0);
    return onlyNative ? `key ${keyText(ka)} only natively` : `key ${keyText(kb)} only in wasm`;
  }
  return 'no key differs';
}

/**
 * Where sequence `sequence` first differs, native against wasm running `wasmSequence`
 * (the same one, except in the self-check): { index, name, native, wasm, key }.
 */
async function locate(file, sequence, wasmSequence = sequence) {
  const n = await nativeTrace(file, sequence.seed);
  const w = await wasm.trace(wasmSequence);
  const same = (a, b) => a !== undefined && b !== undefined && a.outcome === b.outcome && a.state === b.state;
  let index = 0;
  while (index < Math.max(n.length, w.length) && same(n[index], w[index])) ++index;
  if (index === Math.max(n.length, w.length)) return null;
  let key = 'the states are equal after it';
  if (n[index]?.state !== w[index]?.state) {
    const wasmEntries = (await wasm.dump(wasmSequence, index + 1)).map(([k, v]) => [hex(k), hex(v)]);
    key = firstKeyDifference(await nativeDump(file, sequence.seed, index + 1), wasmEntries);
  }
  return { index, name: sequence.mutations[index]?.name, native: n[index], wasm: w[index], key };
}

const describe = (at) =>
  `mutation ${at.index} (${at.name}): native ${at.native?.code ?? 'none'} (outcome ${at.native?.outcome}, state ${at.native?.state}), ` +
  `wasm ${at.wasm?.code ?? 'none'} (outcome ${at.wasm?.outcome}, state ${at.wasm?.state}); ${at.key}`;

// --- The suite --------------------------------------------------------------

// Sequences go through in batches: 1,000 take about 75 MB as a file, and
// `make conformance` runs 10,000.
const BATCH = 500;
const file = join(work, 'sequences.bin');
const started = clock();
const time = { generate: 0, native: 0, wasm: 0 };
const tally = new Map(); // mutator -> code -> count
let mutations = 0, pageFiles = 0, pagesCompared = 0;
// The last batch's, for the self-check.
let sequences, nativeBySeed, wasmResults, wasmPages;

async function runBatch(seeds) {
  let t = clock();
  sequences = seeds.map((seed) => generator.sequence(seed));
  writeFileSync(file, encodeSequences(sequences));
  time.generate += clock() - t;

  // Native and wasm at once: the native runner is another process.
  t = clock();
  const nativeResults = nativeRun(file).then((r) => ((time.native += clock() - t), r));
  wasmResults = new Map();
  wasmPages = new Map();
  for (const sequence of sequences) {
    const codes = [];
    const result = await wasm.run(sequence, { inspect: (_, __, outcome) => codes.push(outcome.code) });
    sequence.mutations.forEach((m, i) => {
      const byCode = tally.get(m.name) ?? tally.set(m.name, new Map()).get(m.name);
      byCode.set(codes[i], (byCode.get(codes[i]) ?? 0) + 1);
    });
    mutations += sequence.mutations.length;
    if (result.pages) wasmPages.set(sequence.seed, result.pages);
    delete result.pages;
    wasmResults.set(sequence.seed, result);
  }
  time.wasm += clock() - t;
  nativeBySeed = await nativeResults;

  const failures = [];
  const difference = firstDifference(sequences, nativeBySeed, wasmResults);
  if (difference) {
    const sequence = sequences.find((s) => s.seed === difference.seed);
    const at = await locate(file, sequence);
    failures.push(
      `seed ${difference.seed}: ${difference.field} differ (native ${difference.native}, wasm ${difference.wasm}); ` +
        (at ? `first at ${describe(at)}` : 'yet every step traced the same (a difference outside the mutations?)'),
    );
  }
  for (const [seed, pages] of wasmPages) {
    const why = comparePages(readFileSync(join(pagesDir, `${seed}.ksnap`)), pages);
    if (why !== null) failures.push(`seed ${seed}: the snapshot files' pages differ: ${why}`);
    pagesCompared += pageCount(pages);
    ++pageFiles;
  }
  if (failures.length > 0) throw new Mismatch(failures.join('\n'));
}

// --- Self-check: the suite can fail ------------------------------------------

async function selfCheck() {
  // 1. A perturbed hash.
  const flipped = new Map(wasmResults);
  const victim = sequences[sequences.length >> 1];
  const r = flipped.get(victim.seed);
  flipped.set(victim.seed, { ...r, state: (r.state[0] === '0' ? '1' : '0') + r.state.slice(1) });
  const caught = firstDifference(sequences, nativeBySeed, flipped);
  if (caught?.seed !== victim.seed) throw new Mismatch(`self-check: a flipped state hash of seed ${victim.seed} was not caught`);

  // 2. A sequence run with one mutation dropped: the first mutation that
  // changed the state natively (after at least one other), dropped on the
  // wasm side; the difference must be found at its index, not before.
  for (const sequence of sequences) {
    const steps = await nativeTrace(file, sequence.seed);
    const k = steps.findIndex((s, i) => i > 0 && s.code === 'ok' && s.state !== steps[i - 1].state);
    if (k < 0) continue;
    const dropped = { ...sequence, mutations: sequence.mutations.filter((_, i) => i !== k) };
    const at = await locate(file, sequence, dropped);
    if (at === null || at.index !== k) {
      throw new Mismatch(`self-check: seed ${sequence.seed} with mutation ${k} dropped was ${at ? `caught at ${at.index}` : 'not caught'}`);
    }
    console.log(`self-check: seed ${sequence.seed} with mutation ${k} (${sequence.mutations[k].name}) dropped is caught: ${describe(at)}`);
    break;
  }

  // 3. A flipped byte in a page.
  const [seed, pages] = wasmPages.entries().next().value ?? [];
  if (seed === undefined) {
    console.log(`self-check: no page comparison to perturb (no seed of the last batch is a multiple of ${PAGE_EVERY})`);
  } else {
    const bytes = readFileSync(join(pagesDir, `${seed}.ksnap`));
    const at = 64 + 16 + 100; // page 0 (the superblock), byte 100
    bytes[at] ^= 0x40;
    const why = comparePages(bytes, pages);
    if (why === null || !why.startsWith('page 0 ')) throw new Mismatch(`self-check: a flipped page byte was ${why ?? 'not caught'}`);
    console.log(`self-check: a flipped page byte is caught: ${why}`);
  }
  console.log('self-check: a flipped state hash is caught');
}

try {
  for (let first = firstSeed; first < firstSeed + count; first += BATCH) {
    await runBatch(Array.from({ length: Math.min(BATCH, firstSeed + count - first) }, (_, i) => first + i));
  }
  if (!opts['no-self-check']) await selfCheck();
} catch (e) {
  if (!(e instanceof Mismatch)) throw e;
  console.error(`conformance: FAILED\n${e.message}`);
  const seed = /seed (\d+)/.exec(e.message)?.[1];
  if (seed) console.error(`reproduce: node tests/conformance/run.mjs --seed ${seed} --count 1 --keep build/conformance`);
  console.error(`files: ${work}`);
  process.exit(1);
}

const seconds = (ms) => (ms / 1000).toFixed(1);
console.log(`conformance: ${count} sequences (seeds ${firstSeed}..${firstSeed + count - 1}), ${mutations} mutations: native and wasm agree`);
console.log(`  outcomes by mutator: ${[...tally].map(([name, codes]) => `${name} ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}`).join('; ')}`);
console.log(`  pages: ${pageFiles} snapshot files, ${pagesCompared} pages byte-identical`);
console.log(
  `  time: generate ${seconds(time.generate)} s, native ${seconds(time.native)} s, ` +
    `wasm ${seconds(time.wasm)} s (the two in parallel), total ${seconds(clock() - started)} s`,
);
if (!opts.keep) rmSync(work, { recursive: true, force: true });
