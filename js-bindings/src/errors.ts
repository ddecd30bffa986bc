// Typed errors. Every failure keepstate reports is a KeepstateError whose
// `code` is one of the engine's stable status strings (KEEPSTATE_STATUS_CODES
// in status.h, generated into ./generated/abi.ts). Status numbers from the C
// ABI and IndexedDB exceptions are converted in exactly one place each:
// errorFromStatus() and errorFromIndexedDB().
import { STATUS_CODES, type StatusCodeName } from './generated/abi.js';

/** Why one stored version could not be restored. */
export interface VersionFailure {
  /** The version that failed (0: the head record, or the store as a whole). */
  version: number;
  code: StatusCodeName;
  message: string;
}

export class KeepstateError extends Error {
  /** Stable machine-readable code, e.g. 'conflict', 'invalid-argument', 'busy'. */
  readonly code: StatusCodeName;
  constructor(code: StatusCodeName, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeepstateError';
    this.code = code;
  }
}

/** Another writer (tab) committed first: nothing was written, the store stays dirty. */
export class ConflictError extends KeepstateError {
  /** The committed version this store's state is based on. */
  readonly expectedVersion: number;
  /** The version now stored (-1 if the stored head is unreadable). */
  readonly actualVersion: number;
  constructor(message: string, expectedVersion = -1, actualVersion = -1) {
    super('conflict', message);
    this.name = 'ConflictError';
    this.expectedVersion = expectedVersion;
    this.actualVersion = actualVersion;
  }
}

/** Stored bytes failed verification. */
export class CorruptionError extends KeepstateError {
  readonly failures: readonly VersionFailure[];
  constructor(message: string, failures: readonly VersionFailure[] = []) {
    super('corruption', message);
    this.name = 'CorruptionError';
    this.failures = failures;
  }
}

/** Storage or memory quota exhausted: the previous version is intact, the store stays dirty. */
export class QuotaError extends KeepstateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('quota', message, options);
    this.name = 'QuotaError';
  }
}

/** The store is closed (or closing). */
export class ClosedError extends KeepstateError {
  constructor(message: string) {
    super('closed', message);
    this.name = 'ClosedError';
  }
}

/** A bad key, value, option or call. */
export class InvalidArgumentError extends KeepstateError {
  constructor(message: string) {
    super('invalid-argument', message);
    this.name = 'InvalidArgumentError';
  }
}

/**
 * Stored data the store knew of is gone and could not be recovered: the
 * browser deleted its IndexedDB (after a crash), or the database was deleted
 * behind the store's back, and no intact second copy holds it. Nothing was
 * opened. `openStore(name, { onDataLoss: 'open' })` opens what is left.
 */
export class DataLossError extends KeepstateError {
  /** What the browser said (`dataLossMessage` of the upgrade), '' if it said nothing. */
  readonly browserMessage: string;
  /** The newest version known to have existed (0: unknown). */
  readonly lastKnownVersion: number;
  /** The version still stored (0: none). */
  readonly storedVersion: number;
  constructor(message: string, browserMessage = '', lastKnownVersion = 0, storedVersion = 0) {
    super('data-loss', message);
    this.name = 'DataLossError';
    this.browserMessage = browserMessage;
    this.lastKnownVersion = lastKnownVersion;
    this.storedVersion = storedVersion;
  }
}

/** The class thrown for each code; codes not listed throw a plain KeepstateError. */
export const ERROR_CLASSES = {
  conflict: ConflictError,
  corruption: CorruptionError,
  quota: QuotaError,
  closed: ClosedError,
  'invalid-argument': InvalidArgumentError,
  'data-loss': DataLossError,
} as const satisfies Partial<Record<StatusCodeName, unknown>>;

/** The stable string of a status number ('internal' for a number the engine does not define). */
export function codeName(status: number): StatusCodeName {
  return STATUS_CODES.find((c) => c.num === status)?.code ?? 'internal';
}

/** The number of a stable code string. */
export function codeNumber(code: StatusCodeName): number {
  const entry = STATUS_CODES.find((c) => c.code === code);
  if (entry === undefined) throw new Error(`unknown status code ${code}`);
  return entry.num;
}

/** THE conversion of an engine status (number + message) into a typed error. */
export function errorFromStatus(status: number, message: string): KeepstateError {
  const code = codeName(status);
  const cls = (ERROR_CLASSES as Partial<Record<StatusCodeName, new (message: string) => KeepstateError>>)[code];
  return cls !== undefined ? new cls(message) : new KeepstateError(code, message);
}

/** THE conversion of an IndexedDB exception or transaction error. */
export function errorFromIndexedDB(error: unknown, what: string): KeepstateError {
  if (error instanceof KeepstateError) return error;
  const name = typeof error === 'object' && error !== null && 'name' in error ? String(error.name) : '';
  const message = error instanceof Error || (typeof error === 'object' && error !== null && 'message' in error)
    ? String((error as { message: unknown }).message)
    : String(error);
  if (name === 'QuotaExceededError') {
    return new QuotaError(`${what}: IndexedDB quota exceeded (${message})`, { cause: error });
  }
  if (name === 'InvalidStateError' || name === 'TransactionInactiveError') {
    return new KeepstateError('closed', `${what}: IndexedDB ${name}: ${message}`, { cause: error });
  }
  return new KeepstateError('internal', `${what}: IndexedDB ${name || 'error'}: ${message}`, { cause: error });
}
