// keepstate: an offline-first state engine. A store lives in a C++ engine
// compiled to WebAssembly and is committed atomically to IndexedDB, with
// optimistic concurrency between tabs. See docs/api.md.
export { openStore } from './open.js';
export type { OpenOptions } from './open.js';
export { importStore, inspectSnapshot } from './snapshot.js';
export type { ImportOptions, SnapshotInfo, SnapshotSource } from './snapshot.js';
export type { Progress, ProgressListener } from './progress.js';
export { deleteStore } from './delete.js';
export { openPool, Pool, ReplicaLostError } from './pool.js';
export type { PoolOptions, CallOptions, PoolStats, PoolEvents, PoolAnswer, ScaleStep } from './pool.js';
export { Reader } from './reader.js';
export type { ReadOnlyStore, JsQuery, QueryAnswer, ReaderOptions } from './reader.js';
export type { DeleteOptions } from './delete.js';
export { Store } from './store.js';
export { storeStatus, watchStatus } from './status.js';
export type { StoreStatus } from './status.js';
export type {
  ScanOptions,
  CommitResult,
  ExportOptions,
  CorruptionEvent,
  DataLossEvent,
  RemoteCommitEvent,
  RebaseEvent,
  RebaseDrop,
  StashedCommitEvent,
  SchemaNewerEvent,
  StorageHealth,
  WatchRange,
  WatchEvent,
  WatchChange,
  WatchSource,
  StoreEvents,
  StoreEventName,
  ReadWrite,
  Transaction,
  Synchronous,
  JSONInput,
} from './types.js';
export { preload } from './wasm.js';
export type { ModuleSource } from './wasm.js';
export type { KeepstateModuleFactory } from './keepstate.js';
export type { CopyDirectory, MirrorDirectory } from './storage/opfs.js';
export type { DataLossReason, LossProtection } from './types.js';
export type {
  StorageBackend,
  BackendCapabilities,
  BlobPolicy,
  BrowserDataLoss,
  CommitRecord,
  CommitRecords,
  PackRequest,
  RestoreHint,
  RestoreSource,
  StashedCommit,
  StoredRecord,
  Timing,
} from './storage/backend.js';
export { RecordKind } from './storage/backend.js';
export {
  KeepstateError,
  ConflictError,
  CorruptionError,
  QuotaError,
  ClosedError,
  InvalidArgumentError,
  DataLossError,
} from './errors.js';
export type { VersionFailure } from './errors.js';
export type { StatusCodeName } from './generated/abi.js';
