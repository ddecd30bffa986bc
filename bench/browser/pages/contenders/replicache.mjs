// Replicache (npm `replicache`), no server (pushURL and pullURL unset), its
// values JSON: a 1 KiB record is stored as its base64 text (1,368
// characters) and read back as that text (not decoded). A mutation
// resolves in memory; Replicache persists to IndexedDB later, on its own
// schedule (within about a second), in transactions with durability
// 'relaxed'. "Durable" here is mutate + persist(): ReplicacheImpl (the
// package's `replicache/impl` entry, the class behind Replicache) is used
// for its persist(), which this page serializes with Replicache's own
// scheduled persists (two at once trip its assertion). licenseKey:
// TEST_LICENSE_KEY (15.3 ignores the option; it no longer needs a key).
import { checkOpened, now, peerRecord, recordKey, recordText, timeRewrites, timeScans } from '../common.mjs';

// The package reads process.env.NODE_ENV, which a bundler replaces: this page has no bundler,
// so it defines it as a production build would, before loading the package.
globalThis.process ??= { env: { NODE_ENV: 'production' } };
const { TEST_LICENSE_KEY } = await import('replicache');
const { ReplicacheImpl } = await import('replicache/impl');

const mutators = {
  async putMany(tx, { entries }) {
    for (const [key, value] of entries) await tx.set(key, value);
  },
};
let rep;

function open(name) {
  rep = new ReplicacheImpl({ name, licenseKey: TEST_LICENSE_KEY, mutators, pullInterval: null, logLevel: 'error' });
  const persist = rep.persist.bind(rep);
  let persisting = Promise.resolve();
  rep.persist = () => (persisting = persisting.then(persist, persist));
}

/** Mutates `ids` (at generation `gen`) in one mutation and waits until it is persisted. */
async function putMany(ids, gen) {
  await rep.mutate.putMany({ entries: ids.map((id) => [recordKey(id), recordText(peerRecord(id, gen))]) });
  await rep.persist();
}

/** A new Replicache `name` (opened untimed); times one mutation putting `records` records, and its persist. */
export async function peersLoad({ name, records }) {
  await rep?.close();
  open(name);
  const t0 = now();
  await putMany(Array.from({ length: records }, (_, id) => id), 0);
  return { ms: now() - t0 };
}

export const peersRewrite = (args) => timeRewrites(args, (id, gen) => putMany([id], gen));

export const peersScan = (args) => timeScans(args, (prefix) => rep.query((tx) => tx.scan({ prefix }).entries().toArray()));

/** After a browser relaunch: times a new client of the same name until `key` is read (firstMs; Replicache loads lazily), then until every record is (allMs). */
export async function peersOpen({ name, records, key }) {
  const t0 = now();
  open(name);
  const first = await rep.query((tx) => tx.get(key));
  const tFirst = now();
  const all = await rep.query((tx) => tx.scan().entries().toArray());
  const tAll = now();
  checkOpened(key, first, all, records, recordText(peerRecord(0, 0)).length);
  return { firstMs: tFirst - t0, allMs: tAll - t0 };
}
