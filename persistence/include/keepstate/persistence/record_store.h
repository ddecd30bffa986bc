// RecordStore: the storage interface persistence writes snapshots through,
// and MemoryRecordStore, an in-memory implementation for tests, benchmarks
// and the fuzzer.
//
// The interface is shaped after one IndexedDB database with three object
// stores (head, manifests, packs; see RecordKind): Apply() is exactly one
// `readwrite` transaction that reads the head, checks it with
// CheckStoredHead (head_check.h: the one concurrency rule), then clears (a fresh line),
// puts and deletes — all or nothing. Get/List are reads in `readonly`
// transactions. In the browser, js-bindings/src/idb.ts is that transaction:
// it reads the stored head and asks the engine's StoreSession::CheckHead
// (which is CheckStoredHead) before it writes.
//
// Thread safety: none (single-threaded, like the rest of keepstate).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "keepstate/persistence/format.h"
#include "keepstate/persistence/head_check.h"  // CheckStoredHead, the rule every Apply runs
#include "keepstate/status.h"

namespace keepstate::persistence {

// A record to put. `bytes` is a view into memory owned by the CommitPlan that
// produced it (the staging buffer): valid while that plan lives and never
// aliasing the live arena. JS hands IndexedDB a copy of exactly these bytes.
struct Record {
  RecordKind kind = RecordKind::kPack;
  std::string key;
  std::span<const std::uint8_t> bytes;
};

// Persister::head_version() when the head found at open does not decode
// (corrupt): the next commit is numbered above every version seen.
inline constexpr std::uint64_t kUnreadableHead = ~std::uint64_t{0};

// One atomic write: check the head, then (a fresh line) clear, put and delete.
struct WriteBatch {
  // The exact head record the writer's state is based on; nullopt: the writer
  // found no head stored. A head that did not decode is expected as its bytes:
  // the batch may replace exactly that head, and of two writers that saw it
  // the first replaces it and the second then finds another head: Conflict.
  std::optional<std::span<const std::uint8_t>> expected_head;
  // Remove every stored record before the puts: a fresh version line
  // replacing data that did not verify.
  bool clear_first = false;
  std::span<const Record> puts;
  std::span<const RecordKey> deletes;
};

class RecordStore {
 public:
  virtual ~RecordStore() = default;

  // The bytes of one record. NotFound if absent.
  virtual Result<std::vector<std::uint8_t>> Get(RecordKind kind, std::string_view key) = 0;
  // Get() into a caller-owned buffer, so a restore reading many packs reuses
  // one allocation (a fresh multi-MiB buffer per pack costs page faults).
  // NotFound if absent; `out` is unspecified on error.
  virtual Status GetInto(RecordKind kind, std::string_view key, std::vector<std::uint8_t>& out) {
    KEEPSTATE_ASSIGN_OR_RETURN(out, Get(kind, key));
    return Status::Ok();
  }
  // The bytes of one record without copying them, for stores that hold
  // records in memory: valid until the store next changes. nullopt if the
  // store cannot lend its bytes (then GetInto) or the record is absent.
  virtual std::optional<std::span<const std::uint8_t>> View(RecordKind, std::string_view) { return std::nullopt; }
  // The keys of one object store, ascending.
  virtual Result<std::vector<std::string>> List(RecordKind kind) = 0;
  // Applies `batch` atomically: either every put and delete lands or none.
  // Errors: as CheckStoredHead, OutOfSpace (quota), or any storage failure.
  virtual Status Apply(const WriteBatch& batch) = 0;
};

// In memory; optionally fails batches to exercise the failure paths.
class MemoryRecordStore : public RecordStore {
 public:
  Result<std::vector<std::uint8_t>> Get(RecordKind kind, std::string_view key) override;
  Status GetInto(RecordKind kind, std::string_view key, std::vector<std::uint8_t>& out) override;
  std::optional<std::span<const std::uint8_t>> View(RecordKind kind, std::string_view key) override;
  Result<std::vector<std::string>> List(RecordKind kind) override;
  Status Apply(const WriteBatch& batch) override;

  // Failure injection: every later Apply whose batch holds more than
  // `records` records (puts + deletes) fails with OutOfSpace and changes
  // nothing, as an aborted IndexedDB transaction would; `records` = 0 fails
  // every non-empty batch. Cleared by ClearFailure().
  void FailBatchesLargerThan(std::size_t records) { fail_after_ = records; }
  void ClearFailure() { fail_after_.reset(); }

  // Direct access for tests (corrupting, truncating, dropping records).
  // nullptr if absent.
  std::vector<std::uint8_t>* Mutable(RecordKind kind, const std::string& key);
  bool Erase(RecordKind kind, const std::string& key);
  void Put(RecordKind kind, const std::string& key, std::vector<std::uint8_t> bytes);

  // A record that exists but whose bytes were not read (a catch-up skips the
  // manifests it holds already): List() names it; Get, GetInto and View
  // answer NotFound and set unread_requested(), so the caller can tell "not
  // stored" from "stored, not read" and read it after all.
  void PutUnread(RecordKind kind, const std::string& key);
  bool unread_requested() const { return unread_requested_; }

  // Bytes stored in one object store, and in all of them.
  std::uint64_t StoredBytes(RecordKind kind) const;
  std::uint64_t StoredBytes() const;
  std::size_t RecordCount(RecordKind kind) const { return map(kind).size(); }

 private:
  using Map = std::map<std::string, std::vector<std::uint8_t>, std::less<>>;
  Map& map(RecordKind kind) { return maps_[static_cast<int>(kind)]; }
  const Map& map(RecordKind kind) const { return maps_[static_cast<int>(kind)]; }

  // Whether `key` was put unread; if so, records that it was asked for.
  bool Unread(RecordKind kind, std::string_view key);

  Map maps_[kRecordKindCount];
  std::set<RecordKey> unread_;
  bool unread_requested_ = false;
  std::optional<std::size_t> fail_after_;
};

}  // namespace keepstate::persistence
