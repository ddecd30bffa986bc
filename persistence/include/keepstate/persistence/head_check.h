// The head check: THE optimistic-concurrency rule of keepstate, in one place
// that every writer runs inside its atomic write, whoever holds the stored
// head: MemoryRecordStore::Apply, StoreSession::CheckHead (the browser's
// IndexedDB transaction), and the stateless check the browser runs for what
// no session captured (a stashed commit, the OPFS copy rewriting IndexedDB).
//
// The rule: a write lands only if the stored head record is byte for byte the
// one the writer's state is based on (none stored counts as equal to none
// expected). So a head rewritten at the same version by another writer is a
// conflict too, and a head that does not decode can be replaced only by the
// writer that saw exactly it. A head of a newer format is never overwritten.
//
// The head record's layout is docs/snapshot-format.md's "Head record"
// (format.h: HeadLayout, DecodeHead).
//
// Thread safety: none needed (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "keepstate/status.h"

namespace keepstate::persistence {

struct WriteBatch;  // record_store.h

using HeadBytes = std::optional<std::span<const std::uint8_t>>;  // nullopt: no head

// THE rule: `expected` is the exact head record the writer's state is based
// on (nullopt: it found none stored), `stored` the head stored now (nullopt:
// none). Errors: Conflict (saying which version is stored and which was
// expected), Unsupported (the stored head has a newer format).
Status CheckStoredHead(HeadBytes expected, HeadBytes stored);
// CheckStoredHead(batch.expected_head, stored).
Status CheckStoredHead(const WriteBatch& batch, HeadBytes stored);

// The stored head's version as a check reports it: 0 if none is stored, -1 if
// it does not decode (corrupt, or a newer format), else its version.
double StoredHeadVersion(HeadBytes stored);

// The version a head record claims (the version field of bytes with the
// head's size and magic), without verifying its checksum; 0 if the bytes are
// not a head record. For naming and reporting only: comparing heads is
// CheckStoredHead's job.
std::uint64_t ClaimedHeadVersion(std::span<const std::uint8_t> bytes);

}  // namespace keepstate::persistence
