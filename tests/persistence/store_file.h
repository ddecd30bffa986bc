// A MemoryRecordStore serialized as one file: the fuzz corpus format.
//
//   "KSSF" then, per record: kind (u8), key length (u32 LE), key bytes,
//   value length (u32 LE), value bytes; to the end of the file.
//
// Parsing is bounded and total: malformed input yields false, never a crash
// (it is the first thing the fuzzer feeds).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "keepstate/persistence/record_store.h"

namespace keepstate::persistence::testing {

std::vector<std::uint8_t> SerializeStore(MemoryRecordStore& store);
bool ParseStore(std::span<const std::uint8_t> bytes, MemoryRecordStore& store);

}  // namespace keepstate::persistence::testing
