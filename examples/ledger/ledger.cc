// The ledger example: accounts and transfers as keepstate mutators.
//
// Mutators (arguments and results are FlatBuffers tables of ledger.fbs):
//   open_account   OpenAccount   -> Ledger         opens `count` accounts
//   transfer       Transfer      -> TransferResult one transfer, or an error
//   transfer_batch TransferBatch -> TransferResult many; each applies or is rejected
//   balance        AccountRef    -> Account        the stored record
//   audit          (nothing)     -> AuditReport    checks the invariant
//
// Queries (read-only, KEEPSTATE_QUERY; run on a read replica by pool.call):
// balance and audit, as above, and query_that_writes (fails: tests).
//
// Records: "acct/<id as 10 decimal digits>" -> Account (so keys sort by id
// and JS can build them), "ledger" -> Ledger.
//
// Invariant: after every write transaction, the sum of the accounts'
// balances equals Ledger.total (changed only by open_account, in the same
// transaction as the accounts it adds), the number of accounts equals
// Ledger.accounts, and the accounts' transfer counts sum to twice
// Ledger.transfers. Every mutator keeps it per transaction, so every
// committed (and restored) version satisfies it; `audit` checks it.
//
// Work is split into transactions of bounded size (kAccountsPerTxn,
// kTransfersPerTxn) with a Yield between them, so one big call does not hold
// the scheduler and other calls interleave between its transactions.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "flatbuffers/flatbuffers.h"
#include "keepstate/sdk/module.h"
#include "ledger_generated.h"

namespace {

namespace fb = keepstate::ledger;
using keepstate::Result;
using keepstate::Status;
using keepstate::engine::ScanOptions;
using keepstate::engine::Txn;
using keepstate::sdk::Args;
using keepstate::sdk::Bytes;
using keepstate::sdk::Context;
using keepstate::sdk::Task;

constexpr std::uint32_t kAccountsPerTxn = 4096;
// Large on purpose: a write transaction journals every page it touches, and
// random transfers over many accounts touch most leaf pages whatever the
// transaction's size, so the cost per transfer falls with the size (measured
// in Node, 100,000 accounts: 2,048 -> 0.07 M transfers/s, 16,384 -> 0.13,
// 65,536 -> 0.30). JS picks the size of a call to bound how long one stalls.
constexpr std::size_t kTransfersPerTxn = 65536;
constexpr std::size_t kGetBatch = 16;  // BTree::kMaxBatch
constexpr std::string_view kLedgerKey = "ledger";
constexpr std::string_view kAccountPrefix = "acct/";
constexpr std::size_t kAccountKeySize = 15;  // "acct/" + 10 digits

// "acct/0000000042": fixed width, so keys sort in id order.
void AccountKey(std::uint32_t id, char* out) {
  std::copy(kAccountPrefix.begin(), kAccountPrefix.end(), out);
  for (int i = 14; i >= 5; --i) {
    out[i] = static_cast<char>('0' + id % 10);
    id /= 10;
  }
}
std::string AccountKey(std::uint32_t id) {
  std::string key(kAccountKeySize, '\0');
  AccountKey(id, key.data());
  return key;
}

// A verified root table of type T in `bytes` (from the store or from JS:
// untrusted either way), or InvalidArgument/Corruption naming `what`.
template <typename T>
Result<const T*> Decode(const std::uint8_t* data, std::size_t size, const char* what, bool stored) {
  flatbuffers::Verifier verifier(data, size);
  if (size < sizeof(flatbuffers::uoffset_t) || !verifier.VerifyBuffer<T>(nullptr)) {
    std::string message = std::string(what) + " is not a valid FlatBuffers " + T::GetFullyQualifiedName();
    return stored ? Status::Corruption(std::move(message)) : Status::InvalidArgument(std::move(message));
  }
  return flatbuffers::GetRoot<T>(data);
}
template <typename T>
Result<const T*> DecodeArgs(Args args) {
  return Decode<T>(args.data(), args.size(), "the call's arguments", false);
}
template <typename T>
Result<const T*> DecodeStored(std::string_view bytes, const char* what) {
  return Decode<T>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), what, true);
}

Bytes Finish(flatbuffers::FlatBufferBuilder& fbb) {
  return Bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

// Records are built with every field present, so a transfer can change a
// balance in place (mutate_*) instead of rebuilding the table.
std::string EncodeAccount(std::uint32_t id, std::int64_t balance, std::uint64_t transfers) {
  flatbuffers::FlatBufferBuilder fbb(64);
  fbb.ForceDefaults(true);
  fbb.Finish(fb::CreateAccount(fbb, id, balance, transfers));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

struct Totals {
  std::uint64_t accounts = 0;
  std::int64_t total = 0;
  std::uint64_t transfers = 0;
  std::uint64_t rejected = 0;
};

std::string EncodeLedger(const Totals& t) {
  flatbuffers::FlatBufferBuilder fbb(64);
  fbb.ForceDefaults(true);
  fbb.Finish(fb::CreateLedger(fbb, t.accounts, t.total, t.transfers, t.rejected));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

// The Ledger record as `get` sees it (zeros if absent).
template <typename Reader>
Result<Totals> ReadTotals(const Reader& reader) {
  std::string bytes;
  Status s = reader.Get(kLedgerKey, &bytes);
  if (s.IsNotFound()) return Totals{};
  if (!s.ok()) return s;
  Result<const fb::Ledger*> l = DecodeStored<fb::Ledger>(bytes, "the ledger record");
  if (!l.ok()) return l.status();
  return Totals{(*l)->accounts(), (*l)->total(), (*l)->transfers(), (*l)->rejected()};
}

Bytes LedgerBytes(const Totals& t) {
  const std::string s = EncodeLedger(t);
  return Bytes(s.begin(), s.end());
}

Bytes TransferResultBytes(std::uint32_t applied, std::uint32_t rejected) {
  flatbuffers::FlatBufferBuilder fbb(32);
  fbb.ForceDefaults(true);
  fbb.Finish(fb::CreateTransferResult(fbb, applied, rejected));
  return Finish(fbb);
}

// ---------------------------------------------------------------------------
// open_account

Task<Result<Bytes>> OpenAccount(Context& ctx, Args args) {
  KEEPSTATE_CO_ASSIGN_OR_RETURN(const fb::OpenAccount* req, DecodeArgs<fb::OpenAccount>(args));
  const std::uint32_t first = req->id(), count = req->count();
  const std::int64_t initial = req->initial_balance();
  if (count == 0) co_return Status::InvalidArgument("open_account: count must be >= 1");
  if (initial < 0) co_return Status::InvalidArgument("open_account: initial_balance must be >= 0");
  if (std::uint64_t{first} + count > 0xffffffffull) {
    co_return Status::InvalidArgument("open_account: ids past 4294967294");
  }
  for (std::uint32_t done = 0; done < count;) {
    const std::uint32_t n = std::min(kAccountsPerTxn, count - done);
    const std::uint32_t from = first + done;
    Result<Totals> totals = ctx.Write([&](Txn& txn) -> Result<Totals> {
      KEEPSTATE_ASSIGN_OR_RETURN(Totals t, ReadTotals(txn));
      char key[kAccountKeySize];
      for (std::uint32_t i = 0; i < n; ++i) {
        AccountKey(from + i, key);
        const std::string_view k(key, kAccountKeySize);
        if (txn.Contains(k)) {
          return Status::InvalidArgument("open_account: account " + std::to_string(from + i) + " exists");
        }
        KEEPSTATE_RETURN_IF_ERROR(txn.Put(k, EncodeAccount(from + i, initial, 0)));
      }
      t.accounts += n;
      t.total += initial * static_cast<std::int64_t>(n);
      KEEPSTATE_RETURN_IF_ERROR(txn.Put(kLedgerKey, EncodeLedger(t)));
      return t;
    });
    if (!totals.ok()) co_return totals.status();
    done += n;
    if (done == count) co_return LedgerBytes(*totals);
    co_await keepstate::scheduler::Yield();
  }
  co_return Status::Internal("open_account: unreachable");
}
KEEPSTATE_MUTATOR("open_account", OpenAccount);

// ---------------------------------------------------------------------------
// transfer and transfer_batch

// Sets an account record's balance and transfer count, in place when the
// fields are present (they are in every record this module writes).
void SetAccount(std::string* value, std::uint32_t id, std::int64_t balance, std::uint64_t transfers) {
  auto* account = flatbuffers::GetMutableRoot<fb::Account>(value->data());
  if (account->mutate_balance(balance) && account->mutate_transfers(transfers)) return;
  *value = EncodeAccount(id, balance, transfers);
}

// Why a transfer cannot apply (ok if it can). `from`/`to` are null for
// accounts that do not exist.
Status CheckTransfer(std::uint32_t from_id, std::uint32_t to_id, std::int64_t amount, const fb::Account* from,
                     const fb::Account* to) {
  if (amount <= 0) return Status::InvalidArgument("transfer: amount must be > 0");
  if (from_id == to_id) return Status::InvalidArgument("transfer: from and to are the same account");
  if (from == nullptr) return Status::NotFound("transfer: no account " + std::to_string(from_id));
  if (to == nullptr) return Status::NotFound("transfer: no account " + std::to_string(to_id));
  if (from->balance() < amount) {
    return Status::InvalidArgument("transfer: insufficient funds in account " + std::to_string(from_id) + " (" +
                                   std::to_string(from->balance()) + " < " + std::to_string(amount) + ")");
  }
  return Status::Ok();
}

Task<Result<Bytes>> TransferOne(Context& ctx, Args args) {
  KEEPSTATE_CO_ASSIGN_OR_RETURN(const fb::Transfer* req, DecodeArgs<fb::Transfer>(args));
  const std::uint32_t from_id = req->from(), to_id = req->to();
  const std::int64_t amount = req->amount();
  Status s = ctx.Write([&](Txn& txn) -> Status {
    std::string from_value, to_value;
    const fb::Account* from = nullptr;
    const fb::Account* to = nullptr;
    if (txn.Get(AccountKey(from_id), &from_value).ok()) {
      KEEPSTATE_ASSIGN_OR_RETURN(from, DecodeStored<fb::Account>(from_value, "an account record"));
    }
    if (txn.Get(AccountKey(to_id), &to_value).ok()) {
      KEEPSTATE_ASSIGN_OR_RETURN(to, DecodeStored<fb::Account>(to_value, "an account record"));
    }
    KEEPSTATE_RETURN_IF_ERROR(CheckTransfer(from_id, to_id, amount, from, to));
    KEEPSTATE_ASSIGN_OR_RETURN(Totals t, ReadTotals(txn));
    const std::int64_t from_balance = from->balance() - amount, to_balance = to->balance() + amount;
    const std::uint64_t from_n = from->transfers() + 1, to_n = to->transfers() + 1;
    SetAccount(&from_value, from_id, from_balance, from_n);
    SetAccount(&to_value, to_id, to_balance, to_n);
    KEEPSTATE_RETURN_IF_ERROR(txn.Put(AccountKey(from_id), from_value));
    KEEPSTATE_RETURN_IF_ERROR(txn.Put(AccountKey(to_id), to_value));
    ++t.transfers;
    return txn.Put(kLedgerKey, EncodeLedger(t));
  });
  if (!s.ok()) co_return s;
  co_return TransferResultBytes(1, 0);
}
KEEPSTATE_MUTATOR("transfer", TransferOne);

// Buffers reused by every batch transaction (transactions never interleave:
// each runs to completion inside Write).
struct BatchScratch {
  std::vector<std::uint64_t> sides;    // (account id << 32) | (op index << 1 | to side), sorted
  std::vector<std::uint32_t> slots;    // per op side (op index << 1 | to side): its account's slot
  std::vector<std::uint32_t> ids;      // distinct accounts of the chunk, ascending: slot -> id
  std::vector<char> keys;              // their keys, kAccountKeySize each
  std::vector<std::string_view> views;
  std::vector<std::string> values;
  std::vector<Status> statuses;
  std::vector<fb::Account*> accounts;  // into values; null: no such account
  std::vector<std::uint8_t> touched;
};
BatchScratch g_batch;

struct ChunkResult {
  std::uint32_t applied = 0;
  std::uint32_t rejected = 0;
};

// Applies ops as one transaction: reads every distinct account once (in
// batches of kGetBatch lookups whose cache misses overlap, in key order),
// applies the transfers in order to the decoded records in place, writes
// each changed account once, then the totals. One sort of the ops' sides
// gives both the distinct accounts and each side's slot among them.
Result<ChunkResult> ApplyChunk(Txn& txn, const fb::TransferOp* const* ops, std::size_t n) {
  BatchScratch& b = g_batch;
  b.sides.resize(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    b.sides[2 * i] = std::uint64_t{ops[i]->from()} << 32 | (2 * i);
    b.sides[2 * i + 1] = std::uint64_t{ops[i]->to()} << 32 | (2 * i + 1);
  }
  std::sort(b.sides.begin(), b.sides.end());
  b.slots.resize(2 * n);
  b.ids.clear();
  for (std::uint64_t side : b.sides) {
    const auto id = static_cast<std::uint32_t>(side >> 32);
    if (b.ids.empty() || b.ids.back() != id) b.ids.push_back(id);
    b.slots[static_cast<std::uint32_t>(side)] = static_cast<std::uint32_t>(b.ids.size() - 1);
  }
  const std::size_t m = b.ids.size();
  b.keys.resize(m * kAccountKeySize);
  b.views.resize(m);
  if (b.values.size() < m) b.values.resize(m);
  b.statuses.resize(m);
  b.accounts.assign(m, nullptr);
  b.touched.assign(m, 0);
  for (std::size_t i = 0; i < m; ++i) {
    AccountKey(b.ids[i], &b.keys[i * kAccountKeySize]);
    b.views[i] = std::string_view(&b.keys[i * kAccountKeySize], kAccountKeySize);
  }
  for (std::size_t i = 0; i < m; i += kGetBatch) {
    txn.GetMany(&b.views[i], std::min(kGetBatch, m - i), &b.values[i], &b.statuses[i]);
  }
  for (std::size_t i = 0; i < m; ++i) {
    if (b.statuses[i].IsNotFound()) continue;
    if (!b.statuses[i].ok()) return b.statuses[i];
    KEEPSTATE_ASSIGN_OR_RETURN(const fb::Account* a, DecodeStored<fb::Account>(b.values[i], "an account record"));
    (void)a;
    b.accounts[i] = flatbuffers::GetMutableRoot<fb::Account>(b.values[i].data());
  }
  ChunkResult r;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t from_id = ops[i]->from(), to_id = ops[i]->to();
    const std::int64_t amount = ops[i]->amount();
    const std::size_t fs = b.slots[2 * i], ts = b.slots[2 * i + 1];
    fb::Account* from = b.accounts[fs];
    fb::Account* to = b.accounts[ts];
    if (amount <= 0 || from_id == to_id || from == nullptr || to == nullptr || from->balance() < amount) {
      ++r.rejected;
      continue;
    }
    // Records this module wrote have every field present; one that does not
    // (mutate_* false) is re-encoded and re-pointed.
    auto set = [&](std::size_t s, fb::Account* a, std::int64_t balance) {
      if (!a->mutate_balance(balance) || !a->mutate_transfers(a->transfers() + 1)) {
        b.values[s] = EncodeAccount(b.ids[s], balance, a->transfers() + 1);
        b.accounts[s] = flatbuffers::GetMutableRoot<fb::Account>(b.values[s].data());
      }
      b.touched[s] = 1;
    };
    set(fs, from, from->balance() - amount);
    set(ts, b.accounts[ts], b.accounts[ts]->balance() + amount);
    ++r.applied;
  }
  for (std::size_t i = 0; i < m; ++i) {
    if (b.touched[i]) KEEPSTATE_RETURN_IF_ERROR(txn.Put(b.views[i], b.values[i]));
  }
  KEEPSTATE_ASSIGN_OR_RETURN(Totals t, ReadTotals(txn));
  t.transfers += r.applied;
  t.rejected += r.rejected;
  KEEPSTATE_RETURN_IF_ERROR(txn.Put(kLedgerKey, EncodeLedger(t)));
  return r;
}

Task<Result<Bytes>> TransferBatch(Context& ctx, Args args) {
  KEEPSTATE_CO_ASSIGN_OR_RETURN(const fb::TransferBatch* req, DecodeArgs<fb::TransferBatch>(args));
  const auto* ops = req->ops();
  const std::size_t total = ops == nullptr ? 0 : ops->size();
  std::vector<const fb::TransferOp*> chunk;
  chunk.reserve(std::min(total, kTransfersPerTxn));
  std::uint32_t applied = 0, rejected = 0;
  for (std::size_t done = 0; done < total;) {
    const std::size_t n = std::min(kTransfersPerTxn, total - done);
    chunk.clear();
    for (std::size_t i = 0; i < n; ++i) chunk.push_back(ops->Get(static_cast<flatbuffers::uoffset_t>(done + i)));
    Result<ChunkResult> r = ctx.Write([&](Txn& txn) { return ApplyChunk(txn, chunk.data(), n); });
    if (!r.ok()) co_return r.status();
    applied += r->applied;
    rejected += r->rejected;
    done += n;
    if (done < total) co_await keepstate::scheduler::Yield();
  }
  co_return TransferResultBytes(applied, rejected);
}
KEEPSTATE_MUTATOR("transfer_batch", TransferBatch);

// ---------------------------------------------------------------------------
// balance and audit

Task<Result<Bytes>> Balance(Context& ctx, Args args) {
  KEEPSTATE_CO_ASSIGN_OR_RETURN(const fb::AccountRef* req, DecodeArgs<fb::AccountRef>(args));
  KEEPSTATE_CO_ASSIGN_OR_RETURN(const keepstate::engine::Store* store, ctx.Read());
  std::string value;
  Status s = store->Get(AccountKey(req->id()), &value);
  if (s.IsNotFound()) co_return Status::NotFound("balance: no account " + std::to_string(req->id()));
  if (!s.ok()) co_return s;
  KEEPSTATE_CO_ASSIGN_OR_RETURN(const fb::Account* a, DecodeStored<fb::Account>(value, "an account record"));
  (void)a;
  co_return Bytes(value.begin(), value.end());
}
KEEPSTATE_MUTATOR("balance", Balance);
// Also a read-only query: pool.call("balance") runs it on a read replica.
KEEPSTATE_QUERY("balance", Balance);

// One pass over every account, without suspending (so it sees one state).
Task<Result<Bytes>> Audit(Context& ctx, Args) {
  KEEPSTATE_CO_ASSIGN_OR_RETURN(const keepstate::engine::Store* store, ctx.Read());
  KEEPSTATE_CO_ASSIGN_OR_RETURN(Totals t, ReadTotals(*store));
  std::uint64_t accounts = 0, account_transfers = 0;
  std::int64_t total = 0;
  std::string problem;
  std::string end_storage;
  const ScanOptions range = keepstate::engine::PrefixScan(kAccountPrefix, &end_storage);
  store->Scan(range, [&](std::string_view key, std::string_view value) {
    Result<const fb::Account*> a = DecodeStored<fb::Account>(value, "an account record");
    if (!a.ok()) {
      problem = std::string(key) + ": " + a.status().message();
      return false;
    }
    if (key != AccountKey((*a)->id())) {
      problem = std::string(key) + " holds account " + std::to_string((*a)->id());
      return false;
    }
    ++accounts;
    total += (*a)->balance();
    account_transfers += (*a)->transfers();
    return true;
  });
  if (problem.empty() && accounts != t.accounts) {
    problem = std::to_string(accounts) + " accounts, the ledger says " + std::to_string(t.accounts);
  }
  if (problem.empty() && total != t.total) {
    problem = "balances sum to " + std::to_string(total) + ", the ledger total is " + std::to_string(t.total);
  }
  if (problem.empty() && account_transfers != 2 * t.transfers) {
    problem = "accounts count " + std::to_string(account_transfers) + " transfer sides, expected 2 x " +
              std::to_string(t.transfers);
  }
  flatbuffers::FlatBufferBuilder fbb(128);
  fbb.ForceDefaults(true);
  const auto message = fbb.CreateString(problem.empty() ? "ok" : problem);
  fbb.Finish(fb::CreateAuditReport(fbb, problem.empty(), accounts, total, t.total, t.transfers,
                                   account_transfers, message));
  co_return Finish(fbb);
}
KEEPSTATE_MUTATOR("audit", Audit);
KEEPSTATE_QUERY("audit", Audit);

// A query that tries to write (tests: a query fails with unsupported and
// writes nothing).
Task<Result<Bytes>> QueryThatWrites(Context& ctx, Args) {
  Status s = ctx.Write([](Txn& txn) { return txn.Put("written-by-a-query", "x"); });
  if (!s.ok()) co_return s;
  co_return Bytes{};
}
KEEPSTATE_QUERY("query_that_writes", QueryThatWrites);

}  // namespace
