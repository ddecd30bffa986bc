// The ledger's JS side: encodes call arguments and decodes results and
// stored records with the flatc-generated TypeScript (compiled to ./js/), so
// JS and C++ share one schema (ledger.fbs). The build copies this file next
// to the module (build/<preset>/examples/ledger/client.mjs); a page, a Worker
// or Node imports it from there ('flatbuffers' is a bare specifier: an import
// map in a page, node_modules in Node).
//
//   import { ledgerModule, Ledger } from '.../examples/ledger/client.mjs';
//   const store = await openStore('bank', { module: ledgerModule });
//   const ledger = new Ledger(store);
//   await ledger.openAccounts(0, 1000, 100);
//   await ledger.transfer(1, 2, 5);
import * as flatbuffers from 'flatbuffers';
import createLedgerModule from './ledger.js';
import {
  Account,
  AccountRef,
  AuditReport,
  Ledger as LedgerRecord,
  OpenAccount,
  Transfer,
  TransferBatch,
  TransferResult,
} from './js/ledger.js';

/** The module source for openStore(name, { module: ledgerModule }). */
export const ledgerModule = {
  factory: createLedgerModule,
  wasmUrl: new URL('./ledger.wasm', import.meta.url),
  // A pool's Workers import the glue themselves (openPool).
  glueUrl: new URL('./ledger.js', import.meta.url),
};

/** The store key of account `id` (as ledger.cc writes it). */
export function accountKey(id) {
  return `acct/${String(id).padStart(10, '0')}`;
}
export const LEDGER_KEY = 'ledger';

const bb = (bytes) => new flatbuffers.ByteBuffer(bytes);
const totalsOf = (l) => ({
  accounts: Number(l.accounts()),
  total: Number(l.total()),
  transfers: Number(l.transfers()),
  rejected: Number(l.rejected()),
});
const accountOf = (a) => ({ id: a.id(), balance: Number(a.balance()), transfers: Number(a.transfers()) });
/** Decodes the TransferResult bytes of transfer / transfer_batch: { applied, rejected }. */
export function decodeTransferResult(bytes) {
  const r = TransferResult.getRootAsTransferResult(bb(bytes));
  return { applied: r.applied(), rejected: r.rejected() };
}
const resultOf = decodeTransferResult;

/** The args of `transfer` (what Ledger.transfer sends; a server push carries these bytes). */
export function encodeTransfer(from, to, amount) {
  const builder = new flatbuffers.Builder(64);
  builder.finish(Transfer.createTransfer(builder, from, to, BigInt(amount)));
  return builder.asUint8Array();
}

/** The args of `open_account`: accounts first .. first+count-1 with `initialBalance` each. */
export function encodeOpenAccount(first, count, initialBalance) {
  const builder = new flatbuffers.Builder(64);
  builder.finish(OpenAccount.createOpenAccount(builder, first, count, BigInt(initialBalance)));
  return builder.asUint8Array();
}

/** Encodes TransferBatch args from parallel arrays (from[i] -> to[i], amount[i]). */
export function encodeTransferBatch(from, to, amount, start = 0, end = from.length) {
  const n = end - start;
  const builder = new flatbuffers.Builder(16 * n + 64);
  TransferBatch.startOpsVector(builder, n); // aligned, with room for the n structs
  // The structs in one pass over the reserved bytes, as the Builder's own
  // createByteVector fills a vector (its `space` and `bb`): ascending here is
  // the order createTransferOp's back-to-front writes leave them in. A
  // TransferOp is from (u32), to (u32), amount (i64), little-endian (ledger.fbs);
  // call.test.mjs decodes what this writes. A createTransferOp call per struct
  // took 80-100 ms per million transfers in Node; this, about 35.
  builder.space -= 16 * n;
  const out = builder.bb.bytes();
  const view = new DataView(out.buffer, out.byteOffset + builder.space, 16 * n);
  for (let i = 0; i < n; ++i) {
    const a = amount[start + i];
    view.setUint32(16 * i, from[start + i], true);
    view.setUint32(16 * i + 4, to[start + i], true);
    if (a >= 0 && a < 0x1_0000_0000 && Number.isInteger(a)) {
      view.setUint32(16 * i + 8, a, true);
      view.setUint32(16 * i + 12, 0, true);
    } else {
      view.setBigInt64(16 * i + 8, BigInt(a), true);
    }
  }
  const ops = builder.endVector();
  builder.finish(TransferBatch.createTransferBatch(builder, ops));
  return builder.asUint8Array();
}

/** The ledger's operations on a store opened with ledgerModule. */
export class Ledger {
  constructor(store) {
    this.store = store;
  }

  /** Opens accounts first .. first+count-1 with `initialBalance` each; resolves with the totals. */
  async openAccounts(first, count, initialBalance) {
    const bytes = await this.store.call('open_account', encodeOpenAccount(first, count, initialBalance));
    return totalsOf(LedgerRecord.getRootAsLedger(bb(bytes)));
  }

  /** One transfer; rejects (typed error) if it cannot apply. */
  async transfer(from, to, amount) {
    return resultOf(await this.store.call('transfer', encodeTransfer(from, to, amount)));
  }

  /** Many transfers in one call: { applied, rejected }. */
  async transferBatch(from, to, amount) {
    return resultOf(await this.store.call('transfer_batch', encodeTransferBatch(from, to, amount)));
  }

  /** The account record, through the `balance` mutator. */
  async balance(id) {
    const builder = new flatbuffers.Builder(32);
    builder.finish(AccountRef.createAccountRef(builder, id));
    return accountOf(Account.getRootAsAccount(bb(await this.store.call('balance', builder.asUint8Array()))));
  }

  /** Checks the invariant in C++: { ok, accounts, total, expectedTotal, transfers, accountTransfers, message }. */
  async audit() {
    return decodeAuditReport(await this.store.call('audit'));
  }

  /** The stored account record read directly from JS (no call): the same table C++ wrote. */
  account(id) {
    const bytes = this.store.get(accountKey(id));
    return bytes === undefined ? undefined : accountOf(Account.getRootAsAccount(bb(bytes)));
  }

  /** The stored Ledger record read from JS (zeros if none). */
  totals() {
    const bytes = this.store.get(LEDGER_KEY);
    return bytes === undefined
      ? { accounts: 0, total: 0, transfers: 0, rejected: 0 }
      : totalsOf(LedgerRecord.getRootAsLedger(bb(bytes)));
  }
}

/** The AuditReport bytes of `audit` (a mutator, and a query on a pool's replica). */
export function decodeAuditReport(bytes) {
  const r = AuditReport.getRootAsAuditReport(bb(bytes));
  return {
    ok: r.ok(),
    accounts: Number(r.accounts()),
    total: Number(r.total()),
    expectedTotal: Number(r.expectedTotal()),
    transfers: Number(r.transfers()),
    accountTransfers: Number(r.accountTransfers()),
    message: r.message(),
  };
}

/** The args of `balance` (a mutator, and a query on a pool's replica). */
export function encodeAccountRef(id) {
  const builder = new flatbuffers.Builder(32);
  builder.finish(AccountRef.createAccountRef(builder, id));
  return builder.asUint8Array();
}

/** An Account record's bytes (what `balance` returns, or a stored record): { id, balance, transfers }. */
export function decodeAccount(bytes) {
  return accountOf(Account.getRootAsAccount(bb(bytes)));
}
