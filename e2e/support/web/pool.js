// The page of pool.spec.ts: a C++ ledger store (examples/ledger) on this
// page's IndexedDB and a pool of read replicas in Workers over it. Each
// function on window.poolTest returns JSON-like values (the specs' Session
// evaluates in every engine).
const ks = await import('/js-bindings/dist/index.js');
const client = await import('/build/wasm-release/examples/ledger/client.mjs');
const QUERIES = new URL('/js-bindings/test/support/pool-queries.mjs', location.href).href;

let store = null;
let ledger = null;
let pool = null;
const steps = [];
let longTasks = [];

function seeded(seed) {
  let x = seed >>> 0 || 1;
  return () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>>= 0));
}
const errorOf = (e) => ({ name: e?.name, code: e?.code, message: String(e?.message ?? e) });

window.poolTest = {
  async open(name, accounts, poolOptions = {}) {
    store = await ks.openStore(name, { module: client.ledgerModule, autosave: false });
    ledger = new client.Ledger(store);
    if (accounts > 0 && ledger.totals().accounts === 0) await ledger.openAccounts(0, accounts, 1000);
    await store.commit();
    pool = await ks.openPool(store, { queries: QUERIES, ...poolOptions });
    pool.on('scale', (s) => steps.push(s));
    return { version: store.version, accounts: ledger.totals().accounts };
  },
  async transfers(n, seed) {
    const next = seeded(seed);
    const accounts = ledger.totals().accounts;
    const from = [], to = [], amount = [];
    for (let i = 0; i < n; ++i) {
      from.push(next() % accounts);
      to.push(next() % accounts);
      amount.push(1 + (next() % 500));
    }
    await ledger.transferBatch(from, to, amount);
    return (await store.commit()).version;
  },
  /** The same reads on the writer and on the pool, at the writer's committed version. */
  async compare(ids) {
    const version = store.version;
    const [audit, balances, sums] = await Promise.all([
      pool.call('audit'),
      Promise.all(ids.map((id) => pool.call('balance', client.encodeAccountRef(id)))),
      pool.call('sumBalances'),
    ]);
    return {
      version,
      writer: { audit: await ledger.audit(), balances: ids.map((id) => ledger.account(id)) },
      pool: {
        versions: [audit.version, sums.version, ...balances.map((b) => b.version)],
        audit: client.decodeAuditReport(audit.result),
        balances: balances.map((b) => client.decodeAccount(b.result)),
        sums: sums.result,
      },
    };
  },
  async minVersion() {
    const v = store.version;
    store.put('note', 'committed later');
    const early = await pool.call('read', 'note');
    const waiting = pool.call('read', 'note', { minVersion: v + 1 });
    await new Promise((r) => setTimeout(r, 100));
    const { version } = await store.commit();
    const late = await waiting;
    return { v, early, version, late };
  },
  /** A burst of slow queries; waits until the pool shrank back to `min` after idle. */
  async burst(n, ms) {
    steps.length = 0;
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: n }, () => pool.call('slow', ms)));
    const burstMs = performance.now() - t0;
    const peak = Math.max(...steps.map((s) => s.replicas));
    const afterBurst = pool.stats();
    const end = performance.now() + 20_000;
    while (pool.stats().replicas > 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 50));
    return { answers: answers.map((a) => a.result), burstMs, peak, steps: steps.slice(), afterBurst: { ...afterBurst, steps: undefined }, after: { ...pool.stats(), steps: undefined } };
  },
  /** A heavy audit; its replica is terminated while it runs. */
  async killMidQuery() {
    const expected = await ledger.audit();
    const version = store.version;
    const answer = pool.call('audit');
    const end = performance.now() + 10_000;
    while (pool.stats().busy === 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 2));
    const victim = pool.stats().list.find((s) => s.state === 'busy');
    pool.terminateReplica(victim.id);
    const got = await answer;
    return { expected, version, got: { version: got.version, audit: client.decodeAuditReport(got.result) }, stats: { ...pool.stats(), steps: undefined }, victim: victim.id };
  },
  /** Commits while queries run: the writer is not held up, and every answer verifies. */
  async writeWhileQuerying(rounds) {
    const queries = [];
    const versions = [];
    for (let i = 0; i < rounds; ++i) {
      queries.push(pool.call('audit'));
      versions.push(await this.transfers(2000, 100 + i));
    }
    const answers = await Promise.all(queries);
    return {
      versions,
      answers: answers.map((a) => ({ version: a.version, ok: client.decodeAuditReport(a.result).ok })),
      writerAudit: await ledger.audit(),
    };
  },
  async closeStore() {
    const queued = pool.call('slow', 20).then(() => 'answered', errorOf);
    await store.close();
    return { queued: await queued, after: await pool.call('audit').then(() => 'answered', errorOf), replicas: pool.stats().replicas };
  },
  stats() {
    return { ...pool.stats() };
  },
  /** Figures: replica cold start and follow latency (after a small commit), and each replica's memory. */
  async figures() {
    await pool.call('read', 'x');
    store.put('small', 'x'.repeat(1024));
    const { version } = await store.commit();
    const end = performance.now() + 5000;
    while (!pool.stats().list.every((s) => s.version >= version) && performance.now() < end) await new Promise((r) => setTimeout(r, 1));
    const { coldStartMs, followMs, replicaBytes } = pool.stats();
    return { coldStartMs, followMs, replicaBytes };
  },
};
document.body.dataset.ready = 'true';
