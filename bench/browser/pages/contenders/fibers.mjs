// The scheduler benchmark (bench/scheduler) built for the web
// (bench_browser_scheduler, bench_browser_asyncify): keepstate's stackless
// C++20 coroutine fibers against emscripten_fiber_swap on Asyncify, in this
// page. Each call instantiates a fresh module and runs its main, collecting
// what it prints.
import createScheduler from '/bench-build/bench_browser_scheduler.js';
import createAsyncify from '/bench-build/bench_browser_asyncify.js';

async function runMain(factory) {
  const lines = [];
  const m = await factory({ print: (s) => lines.push(s), printErr: (s) => lines.push(s) });
  const rc = m.callMain([]);
  if (rc) throw new Error(`exit ${rc}: ${lines.join('\n')}`);
  return lines;
}

const field = (lines, prefix) => {
  const line = lines.find((l) => l.startsWith(prefix));
  if (!line) throw new Error(`no line "${prefix}" in:\n${lines.join('\n')}`);
  return Number(line.slice(prefix.length).trim().split(/\s+/)[0]);
};

/** keepstate: yield ring (1000 fibers, median of 3 inside) and 1M spawn+complete (warm and first run). */
export async function keepstate() {
  const lines = await runMain(createScheduler);
  return {
    yieldsPerSecond: field(lines, 'yield ring, 1000 fibers (median of 3)') * 1e6,
    spawn1MSeconds: field(lines, 'spawn+complete 1M fibers, warm (median of 3)'),
    spawn1MColdSeconds: field(lines, 'spawn+complete 1M fibers, first run'),
    output: lines.join('\n'),
  };
}

/** emscripten_fiber_swap with -sASYNCIFY: the same 1000-fiber ring. */
export async function asyncify() {
  const lines = await runMain(createAsyncify);
  const line = lines.find((l) => l.startsWith('asyncify_yields_per_sec='));
  if (!line) throw new Error(lines.join('\n'));
  return { yieldsPerSecond: Number(line.split('=')[1]) };
}
