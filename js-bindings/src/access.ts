// Access: the reads and writes of a store (ReadWrite), straight on its
// replica (a Store's own methods) or through the replica's open write
// transaction (a transaction's `tx`): the same Replica calls with in_txn 0
// or 1. Here the arguments are checked and the owner's logging runs around
// each write; replica.ts crosses into the module. A read returns a copy (the
// caller owns what get returns: never a view of wasm memory).
//
// Every length is checked here, before anything is copied into wasm memory,
// against the engine's limits (WIRE.MAX_*, generated from abi.h): an
// oversized input costs nothing and changes nothing. Strings must be
// well-formed UTF-16: a lone surrogate has no UTF-8 form, and encoding would
// silently replace it (two keys would alias).
import { WIRE } from './generated/abi.js';
import type { Replica } from './replica.js';
import { ClosedError, InvalidArgumentError, KeepstateError } from './errors.js';
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
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v) as T;
    } catch (e) {
      throw new KeepstateError('invalid-argument', `getJSON(${JSON.stringify(key)}): the stored value is not JSON (${(e as Error).message}); read it with get() or getText()`);
    }
  }
  has(key: string): boolean {
    return this.replica(key).has(this.inTxn, key);
  }
  put(key: string, value: Uint8Array | string): void {
    const replica = this.replica(key);
    checkValue(value);
    this.owner.writing(key);
    replica.put(this.inTxn, key, value);
    this.owner.wrote(key, value);
  }
  putJSON(key: string, value: unknown): void {
    this.replica(key); // the key is checked first: the messages below quote it
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      throw new InvalidArgumentError(`putJSON(${JSON.stringify(key)}): value is not representable as JSON (${(e as Error).message})`);
    }
    if (text === undefined) throw new InvalidArgumentError(`putJSON(${JSON.stringify(key)}): value is not representable as JSON`);
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
      if (v !== undefined) checkString(v, `scan: ${n}`, MAX_KEY_BYTES);
    }
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) throw new InvalidArgumentError('scan: limit must be an integer >= 0');
    return this.owner.replica.scan(this.inTxn, { prefix, start, end, limit, reverse });
  }

  private check(): void {
    if (this.ended) throw new ClosedError('the transaction has ended');
    this.owner.check();
  }

  /** The replica to reach `key` in, once the store is usable and `key` is a key. */
  private replica(key: string): Replica {
    this.check();
    checkString(key, 'key', MAX_KEY_BYTES);
    return this.owner.replica;
  }
}

const MAX_KEY_BYTES = WIRE.MAX_KEY_BYTES as number;
const MAX_VALUE_BYTES = WIRE.MAX_VALUE_BYTES as number;

/** Throws InvalidArgumentError unless `value` is a string of at most `maxBytes` UTF-8 bytes, well-formed. */
function checkString(value: unknown, what: string, maxBytes: number): asserts value is string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${what} must be a string, got ${typeof value}`);
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: count them exactly only where it matters.
  if (value.length > maxBytes || (value.length * 3 > maxBytes && utf8Length(value) > maxBytes)) {
    throw new InvalidArgumentError(`${what} is longer than ${maxBytes} bytes in UTF-8 (${value.length} characters)`);
  }
  if (!wellFormed(value)) throw new InvalidArgumentError(`${what} has a lone surrogate (not well-formed UTF-16): it has no exact UTF-8 form`);
}

/** Throws InvalidArgumentError unless `value` can be stored as a value. */
function checkValue(value: unknown): void {
  if (value instanceof Uint8Array) {
    if (value.length > MAX_VALUE_BYTES) throw new InvalidArgumentError(`value is ${value.length} bytes, more than the ${MAX_VALUE_BYTES} a value may have`);
    return;
  }
  if (typeof value !== 'string') throw new InvalidArgumentError('value must be a Uint8Array or a string');
  checkString(value, 'value', MAX_VALUE_BYTES);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function wellFormed(s: string): boolean {
  const native = (s as { isWellFormed?: () => boolean }).isWellFormed;
  return native !== undefined ? native.call(s) : !LONE_SURROGATE.test(s);
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; ++i) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? (++i, 4) : 3;
  }
  return n;
}
