// Access: the reads and writes of one engine store (ReadWrite), straight on
// the store (a Store's own methods) or through its open write transaction
// (a transaction's `tx`): the same C ABI calls with in_txn 0 or 1.
//
// Each call stages the key (and value) in the engine's scratch buffer and
// makes one keyed export call; a read found copies the value out (the caller
// owns what get returns: never a view of wasm memory, which the next call may
// move or overwrite).
import { Engine } from './engine.js';
import { ClosedError, InvalidArgumentError, codeNumber } from './errors.js';
import type { ReadWrite, ScanOptions } from './types.js';
import { readScan } from './wire.js';

const NOT_FOUND = codeNumber('not-found');

/** Whose reads and writes an Access makes: the store's, with its logging (store.ts). */
export interface AccessOwner {
  /** The engine store now (a reload replaces it). */
  readonly handle: number;
  /** Throws if the store is unusable (ClosedError). */
  check(): void;
  /** Before a write of `key` reaches the engine. */
  writing(key: string): void;
  /** After a write that landed (value undefined: a delete). */
  wrote(key: string, value: Uint8Array | string | undefined): void;
}

export class Access implements ReadWrite {
  /** A transaction's Access once that transaction finished: every call throws ClosedError. */
  private ended = false;

  constructor(
    private readonly engine: Engine,
    private readonly owner: AccessOwner,
    private readonly inTxn: 0 | 1,
  ) {}

  /** The transaction this Access belongs to finished. */
  end(): void {
    this.ended = true;
  }

  get(key: string): Uint8Array | undefined {
    return this.found(key, 0) ? this.engine.outBytes() : undefined;
  }
  getText(key: string): string | undefined {
    return this.found(key, 0) ? this.engine.outText() : undefined;
  }
  getJSON<T = unknown>(key: string): T | undefined {
    const v = this.getText(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  has(key: string): boolean {
    return this.found(key, 1);
  }
  put(key: string, value: Uint8Array | string): void {
    this.check();
    if (typeof key !== 'string') throw badKey(key);
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) throw new InvalidArgumentError('value must be a Uint8Array or a string');
    this.owner.writing(key);
    const e = this.engine;
    const keyLen = e.stageKey(key, Engine.room(value));
    const valueLen = e.stageValue(keyLen, value);
    e.check(e.module._keepstate_store_put(this.owner.handle, this.inTxn, e.scratch, keyLen, e.scratch + keyLen, valueLen));
    this.owner.wrote(key, value);
  }
  putJSON(key: string, value: unknown): void {
    const text = JSON.stringify(value);
    if (text === undefined) throw new InvalidArgumentError('putJSON: value is not representable as JSON');
    this.put(key, text);
  }
  delete(key: string): boolean {
    if (typeof key === 'string') {
      this.check();
      this.owner.writing(key);
    }
    const existed = this.found(key, 2);
    if (existed) this.owner.wrote(key, undefined);
    return existed;
  }
  scan(options: ScanOptions = {}): Array<[string, Uint8Array]> {
    this.check();
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('scan: options must be an object');
    const { prefix, start, end, limit, reverse } = options;
    for (const [n, v] of Object.entries({ prefix, start, end })) {
      if (v !== undefined && typeof v !== 'string') throw new InvalidArgumentError(`scan: ${n} must be a string`);
    }
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) throw new InvalidArgumentError('scan: limit must be an integer >= 0');
    const [p, s, e] = [prefix, start, end].map((x) => Engine.encode(x ?? '')) as [Uint8Array, Uint8Array, Uint8Array];
    const [pp, sp, ep] = this.engine.stage(p, s, e);
    this.engine.check(
      this.engine.module._keepstate_store_scan(
        this.owner.handle, this.inTxn, pp!, p.length, prefix === undefined ? 0 : 1, sp!, s.length, ep!, e.length,
        end === undefined ? 0 : 1, limit ?? 0, reverse ? 1 : 0,
      ),
    );
    return readScan(this.engine.outBytes());
  }

  private check(): void {
    if (this.ended) throw new ClosedError('the transaction has ended');
    this.owner.check();
  }

  /** Calls a keyed export (0 get, 1 has, 2 delete) with the key staged; false if the engine said not-found. */
  private found(key: string, op: 0 | 1 | 2): boolean {
    this.check();
    if (typeof key !== 'string') throw badKey(key);
    const e = this.engine;
    const m = e.module;
    const keyLen = e.stageKey(key);
    const handle = this.owner.handle;
    const status =
      op === 0 ? m._keepstate_store_get(handle, this.inTxn, e.scratch, keyLen)
        : op === 1 ? m._keepstate_store_has(handle, this.inTxn, e.scratch, keyLen)
          : m._keepstate_store_delete(handle, this.inTxn, e.scratch, keyLen);
    if (status === NOT_FOUND) return false;
    e.check(status);
    return true;
  }
}

function badKey(key: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`key must be a string, got ${typeof key}`);
}
