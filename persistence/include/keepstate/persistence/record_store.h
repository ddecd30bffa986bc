// RecordStore: the storage interface persistence writes snapshots through,
// and MemoryRecordStore, an in-memory implementation for tests, benchmarks
// and the fuzzer.
//
// The interface is shaped after one IndexedDB database with three object
// stores (head, manifests, packs; see RecordKind): Apply() is exactly one
// `readwrite` transaction that reads the head, compares its version with the
// expected one, then puts and deletes — all or nothing. Get/List are reads
// in `readonly` transactions. js-bindings implements it in JS.
//
// Thread safety: none (single-threaded, like the rest of keepstate).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "keepstate/persistence/format.h"
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

// WriteBatch::expected_head_version when the writer found a head record that
// does not decode (corrupt): the batch may replace exactly such a head. Two
// writers that both saw it race as usual: the first replaces it, the second
// then finds a readable head and gets Conflict.
inline constexpr std::uint64_t kUnreadableHead = ~std::uint64_t{0};

// One atomic write: check the head, then put and delete.
struct WriteBatch {
  // The head version the writer built on: the stored head's version must be
  // exactly this (0: no head stored; kUnreadableHead: a head that does not
  // decode), else Conflict and nothing changes.
  std::uint64_t expected_head_version = 0;
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
  // Errors: Conflict (stored head version != expected_head_version; a head
  // that fails to decode as Corruption counts as kUnreadableHead),
  // Unsupported (the stored head has a newer format: never overwritten),
  // OutOfSpace (quota), or any storage failure.
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

  // Bytes stored in one object store, and in all of them.
  std::uint64_t StoredBytes(RecordKind kind) const;
  std::uint64_t StoredBytes() const;
  std::size_t RecordCount(RecordKind kind) const { return map(kind).size(); }

 private:
  using Map = std::map<std::string, std::vector<std::uint8_t>, std::less<>>;
  Map& map(RecordKind kind) { return maps_[static_cast<int>(kind)]; }
  const Map& map(RecordKind kind) const { return maps_[static_cast<int>(kind)]; }

  Map maps_[kRecordKindCount];
  std::optional<std::size_t> fail_after_;
};

}  // namespace keepstate::persistence
