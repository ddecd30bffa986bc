// The head check: see head_check.h.
#include "keepstate/persistence/head_check.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "keepstate/persistence/format.h"
#include "keepstate/persistence/record_store.h"

namespace keepstate::persistence {

Status CheckStoredHead(HeadBytes expected, HeadBytes stored) {
  const bool same = stored ? expected && std::equal(stored->begin(), stored->end(), expected->begin(), expected->end())
                           : !expected;
  if (same) return Status::Ok();
  auto describe = [](HeadBytes head) -> Result<std::string> {
    if (!head) return std::string("no head");
    Result<Head> h = DecodeHead(*head);
    if (h.ok()) return "version " + std::to_string(h->version);
    if (h.status().code() == Code::kUnsupported) return h.status();
    return std::string("an unreadable head");
  };
  Result<std::string> now = describe(stored);
  if (!now.ok()) return Status(now.status().code(), "stored " + now.status().message());
  Result<std::string> was = describe(expected);
  return Status::Conflict("another writer committed: the stored head is at " + *now + ", this state is based on " +
                          (was.ok() ? *was : std::string("an unreadable head")));
}

Status CheckStoredHead(const WriteBatch& batch, HeadBytes stored) { return CheckStoredHead(batch.expected_head, stored); }

double StoredHeadVersion(HeadBytes stored) {
  if (!stored) return 0;
  Result<Head> h = DecodeHead(*stored);
  return h.ok() ? static_cast<double>(h->version) : -1;
}

std::uint64_t ClaimedHeadVersion(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != sizeof(HeadLayout)) return 0;
  HeadLayout l;
  std::memcpy(&l, bytes.data(), sizeof l);
  return l.magic == kHeadMagic ? l.version : 0;
}

}  // namespace keepstate::persistence
