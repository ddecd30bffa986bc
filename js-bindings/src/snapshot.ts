// Snapshot files (docs/snapshot-format.md, "Snapshot file"): a store's
// committed state as one self-describing file, written by Store.export() and
// read by importStore(), verified whole before anything is written.
//
// Memory: import feeds the file in chunks, each page verified as it lands in
// the engine, and nothing is adopted until the whole file verified (export
// is wire.ts's exportSnapshot: this module imports open.ts, which imports the
// Store, so the Store cannot import it).
import { loadEngine, type Engine, type ModuleSource } from './engine.js';
import { InvalidArgumentError, KeepstateError } from './errors.js';
import { openRestored, schemaTarget, validateOptions, type OpenOptions } from './open.js';
import type { Store } from './store.js';

import { SNAPSHOT_CHUNK_BYTES as CHUNK_BYTES } from './wire.js';
import { reportProgress, type ProgressListener } from './progress.js';

/** What a snapshot file says about itself (importStore reads it before writing anything). */
export interface SnapshotInfo {
  pageSize: number;
  pageCount: number;
  schemaVersion: number;
  entries: number;
  /** The committed version it was exported from (0: built by keepstate-snapshot). */
  storeVersion: number;
  /** When it was written (ms since the epoch). */
  createdAt: number;
}

export interface ImportOptions extends OpenOptions {
  /** Called with the bytes of the file read and verified so far, of its size (Progress). */
  onProgress?: ProgressListener;
  /** Replace a store that already has data (default false: refused with InvalidArgumentError). */
  replace?: boolean;
}

/** Where a snapshot file's bytes come from: what export() resolved with, a file input's File, a fetch() Response, or the bytes. */
export type SnapshotSource = Blob | ArrayBuffer | Uint8Array | Response;
type Source = SnapshotSource;

/** The source's bytes, in chunks, and its size if it is known. */
function chunksOf(source: Source): { size: number | undefined; chunks: AsyncIterable<Uint8Array> } {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
    return {
      size: bytes.length,
      chunks: (async function* () {
        for (let at = 0; at < bytes.length; at += CHUNK_BYTES) yield bytes.subarray(at, Math.min(bytes.length, at + CHUNK_BYTES));
      })(),
    };
  }
  const isBlob = typeof Blob !== 'undefined' && source instanceof Blob;
  const isResponse = typeof Response !== 'undefined' && source instanceof Response;
  if (!isBlob && !isResponse) throw new InvalidArgumentError('snapshot source must be a Blob, an ArrayBuffer, a Uint8Array or a Response');
  const stream = isBlob ? (source as Blob).stream() : (source as Response).body;
  if (stream === null) throw new InvalidArgumentError('snapshot source: the Response has no body');
  return {
    size: isBlob ? (source as Blob).size : undefined,
    chunks: (async function* () {
      const reader = stream.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          for (let at = 0; at < value.length; at += CHUNK_BYTES) yield value.subarray(at, Math.min(value.length, at + CHUNK_BYTES));
        }
      } finally {
        reader.releaseLock();
      }
    })(),
  };
}

/** Feeds a source's chunks to a new import in `engine` and verifies it whole; returns the id of that import and what the file says. */
async function verifyImport(
  engine: Engine,
  { size, chunks }: ReturnType<typeof chunksOf>,
  onProgress: ProgressListener | undefined,
): Promise<{ id: number; info: SnapshotInfo }> {
  const m = engine.module;
  const id = m._keepstate_import_begin(size ?? -1);
  try {
    let done = 0;
    reportProgress(onProgress, 0, size);
    for await (const chunk of chunks) {
      const [p] = engine.stage(chunk);
      engine.check(m._keepstate_import_add(id, p!, chunk.length));
      done += chunk.length;
      reportProgress(onProgress, done, size);
    }
    engine.check(m._keepstate_import_finish(id));
    return { id, info: JSON.parse(engine.outText()) as SnapshotInfo };
  } catch (e) {
    m._keepstate_import_discard(id);
    throw e;
  }
}

/**
 * What the snapshot file `source` holds — schema version, entries, the version it was exported
 * from, when, its page size and count (SnapshotInfo) — after verifying all of it as
 * importStore() would (a damaged, truncated or foreign file rejects with CorruptionError).
 * Nothing is written anywhere: read a backup's SnapshotInfo before deciding to import it.
 * `options.module`: the wasm module to verify with (openStore's option), if not the package's.
 */
export async function inspectSnapshot(
  source: SnapshotSource,
  options: { module?: ModuleSource; onProgress?: ProgressListener } = {},
): Promise<SnapshotInfo> {
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new InvalidArgumentError('inspectSnapshot: onProgress must be a function');
  }
  const feed = chunksOf(source);
  const engine = await loadEngine(options.module);
  const { id, info } = await verifyImport(engine, feed, options.onProgress);
  engine.module._keepstate_import_discard(id);
  return info;
}

/**
 * Creates (or, with `replace`, replaces) the store `name` from a snapshot file: verifies the
 * whole file first (a damaged, truncated or foreign file rejects with CorruptionError and
 * writes nothing), then commits it as one new version and resolves with the open store.
 * `options` are openStore's (a schema migration runs on the imported state before that
 * commit), plus `replace`.
 */
export async function importStore(name: string, source: SnapshotSource, options: ImportOptions = {}): Promise<Store> {
  validateOptions(name, options);
  const { replace = false, onProgress, ...open } = options;
  if (typeof replace !== 'boolean') throw new InvalidArgumentError('importStore: replace must be a boolean');
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidArgumentError('importStore: onProgress must be a function');
  const feed = chunksOf(source);
  const engine = await loadEngine(options.module);
  const m = engine.module;
  const { id, info } = await verifyImport(engine, feed, onProgress);
  let adopted = false;
  try {
    const store = await openRestored(name, { ...open, pageSize: info.pageSize });
    try {
      if (!replace && (store.version > 0 || store.scan({ limit: 1 }).length > 0)) {
        throw new InvalidArgumentError(
          `importStore: store "${name}" has data (version ${store.version}); pass { replace: true } to replace it`,
        );
      }
      const target = schemaTarget(store, open);
      if (info.schemaVersion > target) {
        throw new KeepstateError('unsupported', `importStore: the file has schema version ${info.schemaVersion}, newer than this code's ${target}`);
      }
      adopted = true;
      await store.adoptImport(id, target, open.schema?.migrate);
    } catch (e) {
      store.discard();
      throw e;
    }
    return store;
  } finally {
    if (!adopted) m._keepstate_import_discard(id);
  }
}
