// Schema migrations (docs/api.md, "Migrations"): at open, a store's state is
// brought to the schema version its code writes — the module's C++
// migrations (KEEPSTATE_MIGRATION), then the app's `schema.migrate` — in one
// transaction, committed before the store is handed out. A stored version
// above the code's is refused: old code never writes over newer data.
import { InvalidArgumentError, KeepstateError } from './errors.js';
import type { Transaction } from './types.js';
import type { Wasm } from './wasm.js';
import type { Writer } from './writer.js';

export type Migrate = (tx: Transaction, fromVersion: number) => void;

/** The schema version code with `schemaVersion` writes: that one, or the module's newest C++ migration. */
export function schemaTarget(wasm: Wasm, schemaVersion: number | undefined): number {
  return Math.max(schemaVersion ?? 0, wasm.migrationsNewest());
}

/**
 * Brings `writer`'s state to schema version `target` in one transaction, and commits it
 * (unless `commit` is false: importStore commits the import and the migration together).
 * If a migration throws, nothing is applied and the error is rethrown.
 */
export async function migrateTo(writer: Writer, target: number, migrate: Migrate | undefined, commit = true): Promise<void> {
  const stored = writer.replica.schemaVersion();
  if (stored > target) {
    throw new KeepstateError(
      'unsupported',
      `store "${writer.name}" has schema version ${stored}, newer than this code's ${target}: it was written by a newer version of the app, and is left as it is`,
    );
  }
  if (stored === target) return;
  // Logged like any transaction: if another tab migrated first, the rebase replays this
  // on its state, where the version it reads is already the target.
  writer.transaction((tx) => {
    const replica = writer.replica;
    const from = replica.schemaVersion(1);
    if (from >= target) return;
    writer.materializePending(); // C++ migrations write keys the log cannot see
    replica.runMigrations(from, target);
    const returned: unknown = migrate?.(tx, from);
    if (typeof returned === 'object' && returned !== null && typeof (returned as { then?: unknown }).then === 'function') {
      throw new InvalidArgumentError('schema.migrate must be synchronous (it returned a promise)');
    }
    replica.setSchemaVersion(target);
  });
  if (commit) await writer.commit();
}
