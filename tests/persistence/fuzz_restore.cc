// libFuzzer target over the restore path: the input is a whole record store
// (store_file.h format), as untrusted as IndexedDB contents after a crash, a
// disk error or tampering. Restore, the head and manifest decoders, Open and
// a commit on top of what Open produced must never crash, hang or allocate
// without bound; every failure must be a Status.
//
// Built only in the native-fuzz preset (see persistence/CMakeLists.txt),
// where the library ignores checksum mismatches so that mutations reach the
// structural checks behind them. Seed corpus: tests/persistence/corpus/.
// Run: scripts/run-fuzz <seconds>.
#include <cstddef>
#include <cstdint>
#include <span>

#include "keepstate/persistence/persister.h"
#include "keepstate/persistence/restore.h"
#include "store_file.h"

using namespace keepstate;
using namespace keepstate::persistence;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  MemoryRecordStore store;
  if (!testing::ParseStore({data, size}, store)) {
    // Not a store file: feed the bytes to the record decoders directly.
    DecodeHead({data, size}).status().IgnoreError();
    DecodeManifest({data, size}).status().IgnoreError();
    return 0;
  }
  RestoreOptions options;
  options.max_state_bytes = 64u << 20;  // keep each run small
  Result<Restored> restored = RestoreLatest(store, options);
  if (restored.ok()) {
    // Invariant: what restored is a well-formed arena of the manifest's shape.
    if (restored->arena.page_count() != restored->manifest.page_count) __builtin_trap();
  }
  PersisterOptions po;
  Result<Persister::Opened> opened = Persister::Open(store, po);
  if (opened.ok() && opened->arena.size_bytes() <= options.max_state_bytes) {
    opened->arena.Write(0);  // page 0 always exists
    opened->persister.Commit(opened->arena, store, 0).IgnoreError();
    RestoreLatest(store, options).status().IgnoreError();
  }
  return 0;
}
