// The test page's driver: `window.ks.call(name, ...args)` runs an op of
// ops.js in the mode named by the URL (?mode=page: in this page; ?mode=worker:
// in a dedicated module Worker) and resolves with {ok, value} or {ok, error}.
// A line per call goes to the page's log, so a screenshot shows what ran.
import { run } from './ops.js';

const params = new URLSearchParams(location.search);
const mode = params.get('mode') ?? 'page';
const log = document.getElementById('log');
document.getElementById('mode').textContent = mode;

let invoke = run;
if (mode === 'worker') {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  const pending = new Map();
  let next = 0;
  worker.onmessage = ({ data: { id, result } }) => {
    pending.get(id)(result);
    pending.delete(id);
  };
  worker.onerror = (e) => {
    for (const resolve of pending.values()) resolve({ ok: false, error: { name: 'WorkerError', message: e.message } });
    pending.clear();
  };
  invoke = (name, args) =>
    new Promise((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      worker.postMessage({ id, name, args });
    });
}

function show(name, args, result) {
  const line = document.createElement('div');
  line.className = result.ok ? 'ok' : 'fail';
  const out = result.ok ? JSON.stringify(result.value) : `${result.error.name}: ${result.error.message}`;
  line.textContent = `${name}(${args.map((a) => JSON.stringify(a)).join(', ')}) → ${out}`.slice(0, 300);
  log.append(line);
  while (log.childElementCount > 40) log.firstElementChild.remove();
}

window.ks = {
  mode,
  async call(name, ...args) {
    const result = await invoke(name, args);
    show(name, args, result);
    return result;
  },
};
// The crash loop reports on the console (page mode), which the spec listens to:
// that channel needs nothing installed in the page and survives reloads.
window.ks.crashLoop = (store, batch, useCpp) =>
  run('crashLoop', [store, batch, (m) => console.debug(`crash-report ${JSON.stringify(m)}`), useCpp]);
document.body.dataset.ready = 'true';
