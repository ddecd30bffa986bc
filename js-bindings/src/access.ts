// Access: the reads and writes of a store (ReadWrite), straight on its
// replica (a Store's own methods) or through the replica's open write
// transaction (a transaction's `tx`): the same Replica calls with in_txn 0
// or 1. Here the arguments are checked and the owner's logging runs around
// each write; replica.ts crosses into the module. A read returns a copy (the
// caller owns what get returns: never a view of wasm memory).
import type { Replica } from './replica.js';
import { ClosedError, InvalidArgumentError } from './errors.js';
import type { ReadWrite, ScanOptions } from './types.js';

/** Whose reads and writes an Access makes: the store's, with its logging (writer.ts). */
export interface AccessOwner {
  /** The replica now (a catch-up or a reload replaces it). */
  readonly replica: Replica;
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
    private readonly owner: AccessOwner,
    private readonly inTxn: 0 | 1,
  ) {}

  /** The transaction this Access belongs to finished. */
  end(): void {
    this.ended = true;
  }

  get(key: string): Uint8Array | undefined {
    return this.replica(key).get(this.inTxn, key);
  }
  getText(key: string): string | undefined {
    return this.replica(key).getText(this.inTxn, key);
  }
  getJSON<T = unknown>(key: string): T | undefined {
    const v = this.getText(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  has(key: string): boolean {
    return this.replica(key).has(this.inTxn, key);
  }
  put(key: string, value: Uint8Array | string): void {
    this.check();
    if (typeof key !== 'string') throw badKey(key);
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) throw new InvalidArgumentError('value must be a Uint8Array or a string');
    this.owner.writing(key);
    this.owner.replica.put(this.inTxn, key, value);
    this.owner.wrote(key, value);
  }
  putJSON(key: string, value: unknown): void {
    const text = JSON.stringify(value);
    if (text === undefined) throw new InvalidArgumentError('putJSON: value is not representable as JSON');
    this.put(key, text);
  }
  delete(key: string): boolean {
    const replica = this.replica(key);
    this.owner.writing(key);
    const existed = replica.delete(this.inTxn, key);
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
    return this.owner.replica.scan(this.inTxn, { prefix, start, end, limit, reverse });
  }

  private check(): void {
    if (this.ended) throw new ClosedError('the transaction has ended');
    this.owner.check();
  }

  /** The replica to reach `key` in, once the store is usable and `key` is a string. */
  private replica(key: string): Replica {
    this.check();
    if (typeof key !== 'string') throw badKey(key);
    return this.owner.replica;
  }
}

function badKey(key: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`key must be a string, got ${typeof key}`);
}
