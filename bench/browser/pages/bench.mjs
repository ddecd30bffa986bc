// The benchmark page's entry: `window.bench.run(contender, op, args)` loads
// ./contenders/<contender>.mjs once and calls its export `op(args)`; a
// contender module keeps its state (open store, database) between calls of
// the same page. run.mjs drives it with page.evaluate.
const loaded = new Map();

async function contender(name) {
  if (!/^[a-z-]+$/.test(name)) throw new Error(`bad contender ${name}`);
  if (!loaded.has(name)) loaded.set(name, import(`./contenders/${name}.mjs`));
  return loaded.get(name);
}

window.bench = {
  pageStart: performance.timeOrigin,
  async run(name, op, args = {}) {
    const mod = await contender(name);
    if (typeof mod[op] !== 'function') throw new Error(`${name}.mjs has no export ${op}`);
    return mod[op](args);
  },
};
document.documentElement.dataset.ready = 'true';
