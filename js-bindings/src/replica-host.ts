// The replica side of the pool (pool.ts): the messages between the pool and
// one read replica, and serveReplica, which answers them with a Reader
// (reader.ts) in its own module instance. pool-worker.ts serves a Worker;
// the pool's inline mode serves a replica in the pool's own realm (Node
// tests, and realms without Workers), through the same messages.
//
// Invariants:
//  - Every 'run' gets exactly one answer ('done' or 'error'), unless the
//    replica dies first (the pool then reruns it elsewhere or rejects it).
//  - A replica never writes: it holds a Reader, which has no write path.
//  - A module that traps is retired: its replica says 'retired' and answers
//    nothing more (the pool replaces it; the query that trapped fails with
//    the module's error, which says what happened).
import { errorFromIndexedDB, KeepstateError } from './errors.js';
import type { KeepstateModuleFactory } from './keepstate.js';
import { BroadcastNotices } from './notices/broadcast.js';
import { MemoryNotices, type CommitNotices } from './notices/notices.js';
import { Reader, type JsQuery } from './reader.js';
import type { RestoreSource } from './storage/backend.js';
import { IndexedDBBackend } from './storage/idb.js';
import { MemoryBackend } from './storage/memory.js';
import { instantiateCompiled } from './wasm.js';

/** The pool's first message to a replica. */
export interface OpenMessage {
  type: 'open';
  name: string;
  storage: 'indexeddb' | 'memory';
  compiled: WebAssembly.Module;
  /** The glue's URL (undefined: the package's own, or `factory` in inline mode). */
  glueUrl: string | undefined;
  /** The JS queries module's URL, if any. */
  queries: string | undefined;
}
export interface RunMessage {
  type: 'run';
  id: number;
  name: string;
  /** 'js': a function of the queries module; 'cxx': a KEEPSTATE_QUERY. */
  kind: 'js' | 'cxx';
  args: unknown;
  minVersion: number;
  timeoutMs: number;
}
export type ToReplica = OpenMessage | RunMessage | { type: 'close' };

/** A typed error as it crosses to the pool (rebuilt there as the same class and code). */
export interface ErrorData {
  name: string;
  code: string;
  message: string;
}
export type FromReplica =
  | { type: 'ready'; version: number; memoryBytes: number; jsQueries: string[]; ms: number }
  | { type: 'failed'; error: ErrorData }
  | { type: 'done'; id: number; version: number; result: unknown; ms: number }
  | { type: 'error'; id: number; error: ErrorData }
  | { type: 'version'; version: number; ms: number }
  | { type: 'retired'; error: ErrorData };

/** Where a replica's messages come from and go: a Worker's global scope, or an inline port. */
export interface ReplicaEndpoint {
  postMessage(message: FromReplica): void;
  addEventListener(type: 'message', listener: (event: { data: ToReplica }) => void): void;
}

/** How a replica finds what a message cannot carry (a function; the IndexedDB factory in Node). */
export interface ReplicaPlatform {
  /** The module factory of `glueUrl` (undefined: the package's own glue). */
  factory(glueUrl: string | undefined): Promise<KeepstateModuleFactory>;
  indexedDB?: IDBFactory;
  /** Imports the JS queries module. */
  importQueries(url: string): Promise<Record<string, unknown>>;
  /** Ends the replica's realm (a Worker closes itself); inline: forgets it. */
  exit(): void;
}

export function errorData(e: unknown): ErrorData {
  if (e instanceof KeepstateError) return { name: e.name, code: e.code, message: e.message };
  const error = e instanceof Error ? e : new Error(String(e));
  return { name: error.name, code: 'internal', message: `${error.name}: ${error.message}` };
}

/** Answers the pool's messages on `endpoint` until 'close'. */
export function serveReplica(endpoint: ReplicaEndpoint, platform: ReplicaPlatform): void {
  let reader: Reader | null = null;
  let notices: CommitNotices | null = null;
  let source: RestoreSource | null = null;
  let queries: Record<string, unknown> = {};
  let opening: Promise<void> | null = null;
  let retired = false;
  const post = (m: FromReplica) => {
    if (!retired || m.type === 'retired') endpoint.postMessage(m);
  };

  const open = async (m: OpenMessage) => {
    const started = performance.now();
    try {
      const [factory, imported] = await Promise.all([
        platform.factory(m.glueUrl),
        m.queries === undefined ? Promise.resolve({}) : platform.importQueries(m.queries),
      ]);
      queries = imported;
      const wasm = await instantiateCompiled(factory, m.compiled);
      wasm.onRetire((error) => {
        post({ type: 'retired', error: errorData(error) });
        retired = true;
      });
      if (m.storage === 'memory') {
        source = new MemoryBackend(m.name);
        notices = new MemoryNotices(m.name);
      } else {
        const factoryIdb = platform.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
        if (factoryIdb === undefined) throw new KeepstateError('unsupported', 'no IndexedDB in this replica\'s realm');
        source = await IndexedDBBackend.open(factoryIdb, m.name).catch((e) => {
          throw errorFromIndexedDB(e, `opening store "${m.name}" for a read replica`);
        });
        notices = BroadcastNotices.available() ? new BroadcastNotices(m.name) : new MemoryNotices(m.name);
      }
      reader = await Reader.open(wasm, {
        name: m.name,
        source,
        notices,
        onVersion: (version, ms) => post({ type: 'version', version, ms }),
      });
      const jsQueries = Object.keys(queries).filter((k) => typeof queries[k] === 'function');
      post({ type: 'ready', version: reader.version, memoryBytes: reader.memoryBytes(), jsQueries, ms: performance.now() - started });
    } catch (e) {
      post({ type: 'failed', error: errorData(e) });
    }
  };

  const run = async (m: RunMessage) => {
    await opening;
    const started = performance.now();
    try {
      if (reader === null) throw new KeepstateError('closed', 'the replica did not open');
      let answer;
      if (m.kind === 'js') {
        const fn = queries[m.name];
        if (typeof fn !== 'function') throw new KeepstateError('invalid-argument', `the queries module exports no function "${m.name}"`);
        answer = await reader.run(fn as JsQuery, m.args, m.minVersion, m.timeoutMs);
      } else {
        answer = await reader.query(m.name, m.args as Uint8Array, m.minVersion, m.timeoutMs);
      }
      post({ type: 'done', id: m.id, version: answer.version, result: answer.result, ms: performance.now() - started });
    } catch (e) {
      post({ type: 'error', id: m.id, error: errorData(e) });
    }
  };

  endpoint.addEventListener('message', (event) => {
    const m = event.data;
    if (m.type === 'open') opening = open(m);
    else if (m.type === 'run') void run(m);
    else if (m.type === 'close') {
      reader?.close();
      notices?.close();
      source?.close();
      platform.exit();
    }
  });
}
