// The sync protocol's messages (docs/sync.md): what a client sends, and the
// server's answers checked field by field before anything is applied (an
// answer is untrusted input like any other).
import { KeepstateError } from '../errors.js';

export interface WireMutation {
  id: number;
  name: string;
  /** base64 */
  args: string;
}

export interface FailedMutation {
  id: number;
  code: string;
  message: string;
}

export interface PushAnswer {
  lastMutationId: number;
  version: number;
  failed: FailedMutation[];
}

export interface PullAnswer {
  version: number;
  lastMutationId: number;
  failed: FailedMutation[];
  /** The values at `version` (null: absent); undefined with `full`. */
  entries: Entries | undefined;
  /** The server does not know what changed since `since`: download the snapshot. */
  full: boolean;
}

/** Keys and their values (null: absent), as pull answers and poke patches carry them. */
export type Entries = Array<[Uint8Array, Uint8Array | null]>;

/** A poke: the space's version, and with `patch` what the commit that made it changed since `patch.from`. */
export interface Poke {
  version: number;
  patch?: { from: number; entries: Entries };
}

type Base64Codec = {
  fromBase64?: (text: string) => Uint8Array;
  prototype: { toBase64?: () => string };
};
const codec = Uint8Array as unknown as Base64Codec;

export function toBase64(bytes: Uint8Array): string {
  if (typeof codec.prototype.toBase64 === 'function') return (bytes as unknown as { toBase64(): string }).toBase64();
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export function fromBase64(text: string): Uint8Array {
  if (typeof codec.fromBase64 === 'function') return codec.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; ++i) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function bad(what: string): KeepstateError {
  return new KeepstateError('corruption', `sync: the server's answer does not decode: ${what}`);
}

function count(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw bad(`${what} must be a whole number`);
  return value as number;
}

function failures(value: unknown): FailedMutation[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw bad('failed must be a list');
  return value.map((f: unknown) => {
    if (typeof f !== 'object' || f === null) throw bad('a failure must be an object');
    const { id, code, message } = f as Record<string, unknown>;
    if (typeof code !== 'string' || typeof message !== 'string') throw bad('a failure needs a code and a message');
    return { id: count(id, 'failed[].id'), code, message };
  });
}

function decode(text: string, what: string): Uint8Array {
  try {
    return fromBase64(text);
  } catch {
    throw bad(`${what} is not base64`);
  }
}

export function readPushAnswer(body: unknown): PushAnswer {
  if (typeof body !== 'object' || body === null) throw bad('a push answer must be an object');
  const b = body as Record<string, unknown>;
  return { lastMutationId: count(b.lastMutationId, 'lastMutationId'), version: count(b.version, 'version'), failed: failures(b.failed) };
}

export function readPullAnswer(body: unknown): PullAnswer {
  if (typeof body !== 'object' || body === null) throw bad('a pull answer must be an object');
  const b = body as Record<string, unknown>;
  const answer: PullAnswer = {
    version: count(b.version, 'version'),
    lastMutationId: count(b.lastMutationId, 'lastMutationId'),
    failed: failures(b.failed),
    entries: undefined,
    full: b.full === true,
  };
  if (answer.full) return answer;
  answer.entries = entries(b.entries);
  return answer;
}

export function readPoke(body: unknown): Poke {
  if (typeof body !== 'object' || body === null) throw bad('a poke must be an object');
  const b = body as Record<string, unknown>;
  const poke: Poke = { version: count(b.version, 'version') };
  if (b.from !== undefined) poke.patch = { from: count(b.from, 'the version a patch follows'), entries: entries(b.entries) };
  return poke;
}

function entries(value: unknown): Entries {
  if (!Array.isArray(value)) throw bad('entries must be a list');
  return value.map((e: unknown) => {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || (e[1] !== null && typeof e[1] !== 'string')) {
      throw bad('an entry must be [key, value or null]');
    }
    return [decode(e[0], 'a key'), e[1] === null ? null : decode(e[1], 'a value')];
  });
}
