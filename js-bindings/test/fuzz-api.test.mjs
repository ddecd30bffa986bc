// The API fuzzer (fuzz-api.mjs) for a bounded time: KEEPSTATE_FUZZ_SECONDS in all (default 60,
// as in `make test`; `make fuzz` gives it more), shared between the memory backend and
// fake-indexeddb. KEEPSTATE_FUZZ_SEED replays one run (the seed a failure prints);
// KEEPSTATE_FUZZ_BACKEND limits it to one backend.
import { test } from 'node:test';
import { fuzz, freshSeed } from './fuzz-api.mjs';

const seconds = Number(process.env.KEEPSTATE_FUZZ_SECONDS ?? 60);
const runSeed = process.env.KEEPSTATE_FUZZ_SEED === undefined ? undefined : Number(process.env.KEEPSTATE_FUZZ_SEED) >>> 0;
const backends = process.env.KEEPSTATE_FUZZ_BACKEND ? [process.env.KEEPSTATE_FUZZ_BACKEND] : ['memory', 'indexeddb'];
const each = seconds / backends.length;

for (const backend of backends) {
  const seed = freshSeed();
  const what = runSeed === undefined ? `${each} s, seed ${seed}` : `run ${runSeed}`;
  test(`API fuzzer over the ${backend} backend (${what}): the store matches the model, errors are typed, nothing breaks after one`, { timeout: (each + 300) * 1000 }, async (t) => {
    const r = await fuzz({ backend, seconds: each, seed, runSeed, log: (line) => t.diagnostic(line) });
    t.diagnostic(`${r.runs} runs, ${r.ops} operations (${Math.round(r.ops / r.seconds)}/s), ${r.errors} refused as expected`);
  });
}
