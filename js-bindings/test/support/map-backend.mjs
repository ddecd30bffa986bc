// A StorageBackend written from the contract alone (storage/backend.ts,
// docs/api.md "Your own storage"), in one file: records in a Map that the
// backends made by one `mapStorage()` share, as tabs share a database. It
// takes only the required members (no capabilities, stashes or loss report),
// so the store's defaults for those run too. Test-only.
const HEAD = 0;
const PACK = 2;

/** A shared Map of records and a maker of backends over it (one per open store). */
export function mapStorage() {
  const records = new Map(); // `${kind}/${key}` -> { kind, key, bytes }
  const id = (kind, key) => `${kind}/${key}`;
  let writes = 0;
  const backend = () => ({
    label: 'a test Map',
    async readHead() {
      return records.get(id(HEAD, 'head'))?.bytes.slice();
    },
    async readForRestore(start, next) {
      // Head and manifests with their bytes, packs by key; then each pack asked for.
      let want = start([...records.values()].map((r) => (r.kind === PACK ? { ...r, bytes: new Uint8Array(0) } : { ...r, bytes: r.bytes.slice() })));
      while (want !== null) {
        await Promise.resolve();
        want = next(records.get(id(PACK, want.need))?.bytes.slice());
      }
    },
    async readAll() {
      return [...records.values()].map((r) => ({ ...r, bytes: r.bytes.slice() }));
    },
    async writeCommit(batch, _durability, checkHead) {
      await Promise.resolve();
      const puts = await Promise.all(batch.puts.map(async (r) => ({ ...r, bytes: r.bytes instanceof Uint8Array ? r.bytes.slice() : new Uint8Array(await r.bytes.arrayBuffer()) })));
      // Atomic: the check and every change in one synchronous step.
      const error = checkHead(records.get(id(HEAD, 'head'))?.bytes);
      if (error !== null) throw error;
      if (batch.clearFirst) records.clear();
      for (const r of puts) records.set(id(r.kind, r.key), r);
      for (const d of batch.deletes) records.delete(id(d.kind, d.key));
      ++writes;
    },
    close() {},
  });
  return { backend, records, writes: () => writes };
}
