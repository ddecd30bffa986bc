// The ledger's account records decoded without the flatc output (a JS query
// module must stand alone): an Account table (ledger.fbs: id u32, balance
// i64, transfers u64), every field present (ForceDefaults).
export function accountKeyOf(id) {
  return `acct/${String(id).padStart(10, '0')}`;
}

export function decodeAccount(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const table = view.getUint32(0, true);
  const vtable = table - view.getInt32(table, true);
  const field = (i) => view.getUint16(vtable + 4 + 2 * i, true);
  return {
    id: view.getUint32(table + field(0), true),
    balance: Number(view.getBigInt64(table + field(1), true)),
    transfers: Number(view.getBigUint64(table + field(2), true)),
  };
}
