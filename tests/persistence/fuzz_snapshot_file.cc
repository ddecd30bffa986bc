// libFuzzer target over the import path: the input is a snapshot file
// (docs/snapshot-format.md, "Snapshot file"), as untrusted as any file a
// user picks or a server sends. The reader must never crash, hang or
// allocate beyond its limit; every failure must be a Status; feeding the
// same bytes in chunks must give the same result as feeding them at once;
// and a state that imports must export and import again and take writes.
//
// Built only in the native-fuzz preset (see persistence/CMakeLists.txt),
// where the library ignores checksum and hash mismatches so that mutations
// reach the superblock and B+tree checks behind them. Seed corpus:
// tests/persistence/snapshot-corpus/ (written by snapshot_file_test.cc).
// Run: scripts/run-fuzz <seconds>.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keepstate/persistence/snapshot_file.h"

using namespace keepstate;
using namespace keepstate::persistence;

namespace {

SnapshotReaderOptions Options(std::size_t size) {
  SnapshotReaderOptions o;
  o.max_state_bytes = 16u << 20;  // keep each run small
  o.file_size = size;             // as a caller that knows the length: no allocation beyond it
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  Result<ImportedSnapshot> whole = DecodeSnapshotFile(bytes, Options(size));

  // The same bytes in chunks of a size the input picks.
  SnapshotReader reader(Options(size));
  const std::size_t chunk = size == 0 ? 1 : 1 + data[size - 1] % 97 * (data[0] % 3 == 0 ? 61 : 1);
  Status s;
  for (std::size_t at = 0; at < size && s.ok(); at += chunk) {
    s = reader.Add(bytes.subspan(at, std::min(chunk, size - at)));
  }
  Result<ImportedSnapshot> streamed = s.ok() ? std::move(reader).Finish() : Result<ImportedSnapshot>(s);
  // Invariant: chunking never changes the verdict.
  if (whole.ok() != streamed.ok()) __builtin_trap();
  if (!whole.ok() && (whole.status().code() != streamed.status().code() ||
                      whole.status().message() != streamed.status().message())) {
    __builtin_trap();
  }
  if (!whole.ok()) return 0;

  // Invariant: what imported has the header's shape, exports again (all
  // pages clean), and that file imports.
  engine::Store& store = *whole->store;
  if (store.arena().page_count() != whole->info.page_count) __builtin_trap();
  if (store.Count() != whole->info.entry_count) __builtin_trap();
  Result<std::vector<std::uint8_t>> again = EncodeSnapshotFile(store.arena(), {1, 2});
  if (!again.ok()) __builtin_trap();
  Result<ImportedSnapshot> reimported = DecodeSnapshotFile(*again, Options(again->size()));
  if (!reimported.ok()) __builtin_trap();
  // And the tree takes reads and writes.
  std::uint64_t seen = 0;
  store.Scan({}, [&](std::string_view, std::string_view) { return ++seen < 100000; });
  store.Put("fuzz", std::string(size % 3000, 'v')).IgnoreError();
  store.Delete("fuzz").status().IgnoreError();
  return 0;
}
