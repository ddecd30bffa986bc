// Access: the reads and writes of one engine store (ReadWrite), straight on
// the store (a Store's own methods) or through its open write transaction
// (a transaction's `tx`): the same C ABI calls with in_txn 0 or 1.
import { Engine } from './engine.js';
import { InvalidArgumentError, codeNumber } from './errors.js';
import type { ReadWrite, ScanOptions } from './types.js';
import { readScan } from './wire.js';

const NOT_FOUND = codeNumber('not-found');

export class Access implements ReadWrite {
  /**
   * `handle()` is the engine store now (a reload replaces it); `check()` runs
   * before every call and throws if the store or transaction is unusable;
   * `wrote(key, value)` runs after every write that landed (value undefined:
   * a delete).
   */
  constructor(
    private readonly engine: Engine,
    private readonly handle: () => number,
    private readonly inTxn: 0 | 1,
    private readonly check: () => void,
    private readonly wrote: (key: string, value: Uint8Array | string | undefined) => void,
  ) {}

  get(key: string): Uint8Array | undefined {
    return this.found(key, 'get') ? this.engine.outBytes() : undefined;
  }
  getText(key: string): string | undefined {
    const v = this.get(key);
    return v === undefined ? undefined : Engine.decode(v);
  }
  getJSON<T = unknown>(key: string): T | undefined {
    const v = this.getText(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  has(key: string): boolean {
    return this.found(key, 'has');
  }
  put(key: string, value: Uint8Array | string): void {
    this.check();
    const k = keyBytes(key);
    let v: Uint8Array;
    if (typeof value === 'string') v = Engine.encode(value);
    else if (value instanceof Uint8Array) v = value;
    else throw new InvalidArgumentError('value must be a Uint8Array or a string');
    const [kp, vp] = this.engine.stage(k, v);
    this.engine.check(this.engine.module._keepstate_store_put(this.handle(), this.inTxn, kp!, k.length, vp!, v.length));
    this.wrote(key, value);
  }
  putJSON(key: string, value: unknown): void {
    const text = JSON.stringify(value);
    if (text === undefined) throw new InvalidArgumentError('putJSON: value is not representable as JSON');
    this.put(key, text);
  }
  delete(key: string): boolean {
    const existed = this.found(key, 'delete');
    if (existed) this.wrote(key, undefined);
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
        this.handle(), this.inTxn, pp!, p.length, prefix === undefined ? 0 : 1, sp!, s.length, ep!, e.length,
        end === undefined ? 0 : 1, limit ?? 0, reverse ? 1 : 0,
      ),
    );
    return readScan(this.engine.outBytes());
  }

  /** Calls a keyed export with the key staged; false if the engine said not-found. */
  private found(key: string, op: 'get' | 'has' | 'delete'): boolean {
    this.check();
    const k = keyBytes(key);
    const [kp] = this.engine.stage(k);
    const m = this.engine.module;
    const args = [this.handle(), this.inTxn, kp!, k.length] as const;
    const status =
      op === 'get' ? m._keepstate_store_get(...args) : op === 'has' ? m._keepstate_store_has(...args) : m._keepstate_store_delete(...args);
    if (status === NOT_FOUND) return false;
    this.engine.check(status);
    return true;
  }
}

function keyBytes(key: unknown): Uint8Array {
  if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string, got ${typeof key}`);
  return Engine.encode(key);
}
