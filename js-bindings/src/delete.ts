// deleteStore: removes a store for good — its records, the OPFS copy and
// markers, stashed commits — and tells every open store of that name, here
// and in other tabs, to close.
//
// Order, so that a kill at any moment leaves either the store or nothing,
// never a store reported as lost: under the store's lock (no commit
// interleaves), first the OPFS folder (the copy and the marker: the evidence
// that data existed), then the records. Killed in between, the records are
// still there and the next open rewrites the copy from them; a store whose
// records are gone has nothing left that would report them missing.
import { InvalidArgumentError } from './errors.js';
import { BroadcastNotices } from './notices/broadcast.js';
import { MemoryNotices } from './notices/notices.js';
import { IndexedDBBackend } from './storage/idb.js';
import { storeLock } from './storage/lock.js';
import { MemoryBackend } from './storage/memory.js';
import { OpfsCopy, opfsRoot } from './storage/opfs.js';
import { validateOptions, type OpenOptions } from './open.js';

/** Where the store to delete lives: openStore's options of that kind. */
export type DeleteOptions = Pick<OpenOptions, 'storage' | 'indexedDB' | 'opfs'>;

/** The writer id of a deleteStore call's notice: no store has it. */
const DELETER = -1;

/**
 * Deletes the store `name` and everything keepstate keeps for it. Every store of that
 * name open in this realm or another tab hears it and closes (its methods throw
 * ClosedError; a 'deleted' event says why), losing uncommitted work. The next
 * openStore(name) opens a new, empty store, with no data-loss report. Resolves once
 * everything is gone; deleting a store that does not exist resolves too.
 */
export async function deleteStore(name: string, options: DeleteOptions = {}): Promise<void> {
  validateOptions(name, options, 'deleteStore');
  for (const key of Object.keys(options)) {
    if (key !== 'storage' && key !== 'indexedDB' && key !== 'opfs') throw new InvalidArgumentError(`deleteStore: option "${key}" does not apply`);
  }
  const { storage } = options;
  const indexedDB = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if ((storage === undefined || storage === 'indexeddb') && indexedDB === undefined) {
    throw new InvalidArgumentError("deleteStore: no IndexedDB here; pass options.indexedDB, or storage: 'memory'");
  }
  if (typeof storage === 'object' && typeof storage.destroy !== 'function') {
    throw new InvalidArgumentError('deleteStore: this storage backend has no destroy()');
  }
  const notices = storage !== 'memory' && BroadcastNotices.available() ? new BroadcastNotices(name) : new MemoryNotices(name);
  const lock = storeLock(name, () => Promise.resolve());
  try {
    await lock(async () => {
      if (storage === 'memory') {
        MemoryBackend.delete(name);
        return;
      }
      const root = options.opfs ?? (await opfsRoot());
      if (root !== undefined) await OpfsCopy.removeStore(root, name);
      if (typeof storage === 'object') await storage.destroy!();
      else await IndexedDBBackend.deleteDatabase(indexedDB!, name);
    });
    notices.announce({ kind: 'deleted', writer: DELETER });
  } finally {
    // A BroadcastChannel closed right after posting still delivers what it posted.
    notices.close();
  }
}
