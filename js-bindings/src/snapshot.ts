// Snapshot files (docs/snapshot-format.md, "Snapshot file"): a store's
// committed state as one self-describing file, written by Store.export() and
// read by importStore(), verified whole before anything is written.
//
// Memory: import feeds the file in chunks, each page verified as it lands in
// the module, and nothing is adopted until the whole file verified (export
// is Replica.exportFile).
import { loadWasm } from './wasm.js';
import { InvalidArgumentError, KeepstateError } from './errors.js';
import { migrateTo, schemaTarget } from './migrations.js';
import { openParts, validateOptions, type OpenOptions } from './open.js';
import { SNAPSHOT_CHUNK_BYTES as CHUNK_BYTES } from './replica.js';
import { reportProgress, type ProgressListener } from './progress.js';
import { Store } from './store.js';
import type { ModuleSource, Wasm } from './wasm.js';

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
  /** Replace a store that already has data (default false: refused with InvalidArgumentError). */
  replace?: boolean;
  /** Stops the import: it rejects with the signal's reason, and nothing is kept (memory included). */
  signal?: AbortSignal;
  /** Called with the bytes of the file read and verified so far, of its size (Progress). */
  onProgress?: ProgressListener;
}

/** Where a snapshot file's bytes come from: what export() resolved with, a file input's File, a fetch() Response, or the bytes. */
export type SnapshotSource = Blob | ArrayBuffer | Uint8Array | Response;
type Source = SnapshotSource;

/**
 * The size a Response says its body has (Content-Length), if it says so of the bytes it
 * delivers: a compressed body's length is not the file's.
 */
function responseSize(response: Response): number | undefined {
  const length = response.headers.get('content-length');
  const encoding = response.headers.get('content-encoding');
  if (length === null || (encoding !== null && encoding !== 'identity')) return undefined;
  const n = Number(length);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** The source's bytes, in chunks, and its size if it is known. */
function chunksOf(source: Source, signal: AbortSignal | undefined): { size: number | undefined; chunks: AsyncIterable<Uint8Array> } {
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
  if (isResponse && !(source as Response).ok) {
    const r = source as Response;
    throw new InvalidArgumentError(`snapshot source: the Response is ${r.status} ${r.statusText}${r.url ? ` (${r.url})` : ''}, not a snapshot file`);
  }
  const stream = isBlob ? (source as Blob).stream() : (source as Response).body;
  if (stream === null) throw new InvalidArgumentError('snapshot source: the Response has no body');
  return {
    size: isBlob ? (source as Blob).size : responseSize(source as Response),
    chunks: (async function* () {
      const reader = stream.getReader();
      // An abort cancels the read in flight (a stalled download included).
      const cancel = () => void reader.cancel(signal?.reason).catch(() => undefined);
      signal?.addEventListener('abort', cancel);
      try {
        for (;;) {
          const { done, value } = await reader.read();
          signal?.throwIfAborted();
          if (done) return;
          for (let at = 0; at < value.length; at += CHUNK_BYTES) yield value.subarray(at, Math.min(value.length, at + CHUNK_BYTES));
        }
      } finally {
        signal?.removeEventListener('abort', cancel);
        reader.releaseLock();
      }
    })(),
  };
}

/** The signal option, checked. */
function checkSignal(signal: unknown, what: string): AbortSignal | undefined {
  if (signal !== undefined && !(typeof signal === 'object' && signal !== null && typeof (signal as AbortSignal).throwIfAborted === 'function')) {
    throw new InvalidArgumentError(`${what}: signal must be an AbortSignal`);
  }
  (signal as AbortSignal | undefined)?.throwIfAborted();
  return signal as AbortSignal | undefined;
}

/**
 * Feeds `source` to a new import in `wasm` and verifies it whole (each page as it arrives);
 * returns the id of that import and what the file says. A failure or an abort discards it.
 */
async function verifyImport(
  wasm: Wasm,
  source: Source,
  signal: AbortSignal | undefined,
  onProgress: ProgressListener | undefined,
): Promise<{ id: number; info: SnapshotInfo }> {
  const { size, chunks } = chunksOf(source, signal);
  const m = wasm.module;
  const id = m._keepstate_import_begin(size ?? -1);
  try {
    let done = 0;
    reportProgress(onProgress, 0, size);
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      const [p] = wasm.stage(chunk);
      wasm.check(m._keepstate_import_add(id, p!, chunk.length));
      done += chunk.length;
      reportProgress(onProgress, done, size);
    }
    signal?.throwIfAborted();
    wasm.check(m._keepstate_import_finish(id));
    return { id, info: JSON.parse(wasm.outText()) as SnapshotInfo };
  } catch (e) {
    m._keepstate_import_discard(id);
    throw e;
  } finally {
    wasm.trimScratch();
  }
}

/** @internal A synced store's snapshot from its server (sync/client.ts), verified into `wasm`: the import's id. */
export async function importFromBytes(wasm: Wasm, bytes: Uint8Array): Promise<number> {
  return (await verifyImport(wasm, bytes, undefined, undefined)).id;
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
  options: { module?: ModuleSource; onProgress?: ProgressListener; signal?: AbortSignal } = {},
): Promise<SnapshotInfo> {
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new InvalidArgumentError('inspectSnapshot: onProgress must be a function');
  }
  const signal = checkSignal(options.signal, 'inspectSnapshot');
  const wasm = await loadWasm(options.module);
  const { id, info } = await verifyImport(wasm, source, signal, options.onProgress);
  wasm.module._keepstate_import_discard(id);
  return info;
}

/**
 * Creates (or, with `replace`, replaces) the store `name` from a snapshot file: verifies the
 * whole file first (a damaged, truncated or foreign file rejects with CorruptionError and
 * writes nothing), then commits it as one new version and resolves with the open store.
 * `options` are openStore's (a schema migration runs on the imported state before that
 * commit), plus `replace`, `signal` and `onProgress`.
 */
export async function importStore(name: string, source: SnapshotSource, options: ImportOptions = {}): Promise<Store> {
  validateOptions(name, options, 'importStore', ['replace', 'signal', 'onProgress']);
  const { replace = false, signal: given, onProgress, ...open } = options;
  if (typeof replace !== 'boolean') throw new InvalidArgumentError('importStore: replace must be a boolean');
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidArgumentError('importStore: onProgress must be a function');
  const signal = checkSignal(given, 'importStore');
  const wasm = await loadWasm(options.module);
  const { id, info } = await verifyImport(wasm, source, signal, onProgress);
  let adopted = false;
  try {
    // Refused before anything is opened: nothing is created for a file this code cannot take.
    const target = schemaTarget(wasm, open.schema?.version);
    if (info.schemaVersion > target) {
      throw new KeepstateError('unsupported', `importStore: the file has schema version ${info.schemaVersion}, newer than this code's ${target}`);
    }
    const parts = await openParts(name, { ...open, pageSize: info.pageSize });
    const { writer } = parts;
    try {
      if (!replace && (writer.version > 0 || writer.direct.scan({ limit: 1 }).length > 0)) {
        throw new InvalidArgumentError(
          `importStore: store "${name}" has data (version ${writer.version}); pass { replace: true } to replace it`,
        );
      }
      await writer.adoptImport(id);
      adopted = true; // the import is the replica's now (a refused adoption leaves it to discard below)
      // The import is not committed yet: a migration that throws leaves the stored data as it was.
      await migrateTo(writer, target, open.schema?.migrate, false);
      await writer.commit();
      writer.setCodeSchema(target);
    } catch (e) {
      await parts.discard();
      throw e;
    }
    return Store.create(parts);
  } finally {
    if (!adopted) wasm.module._keepstate_import_discard(id);
  }
}
