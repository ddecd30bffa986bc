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
import { reportProgress, type ProgressListener } from './progress.js';
import { Store } from './store.js';
import { verifyImport, type SnapshotInfo, type SnapshotSource } from './snapshot-verify.js';
import type { ModuleSource, Wasm } from './wasm.js';

export type { SnapshotInfo, SnapshotSource };
type Source = SnapshotSource;

export interface ImportOptions extends OpenOptions {
  /** Replace a store that already has data (default false: refused with InvalidArgumentError). */
  replace?: boolean;
  /** Stops the import: it rejects with the signal's reason, and nothing is kept (memory included). */
  signal?: AbortSignal;
  /** Called with the bytes of the file read and verified so far, of its size (Progress). */
  onProgress?: ProgressListener;
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
