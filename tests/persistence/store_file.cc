// See store_file.h.
#include "store_file.h"

#include <cstring>
#include <string>

namespace keepstate::persistence::testing {
namespace {

constexpr char kMagic[4] = {'K', 'S', 'S', 'F'};

void PutU32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace

std::vector<std::uint8_t> SerializeStore(MemoryRecordStore& store) {
  std::vector<std::uint8_t> out(kMagic, kMagic + 4);
  for (int k = 0; k < kRecordKindCount; ++k) {
    const auto kind = static_cast<RecordKind>(k);
    const std::vector<std::string> keys = store.List(kind).value();
    for (const std::string& key : keys) {
      std::vector<std::uint8_t> value = store.Get(kind, key).value();
      out.push_back(static_cast<std::uint8_t>(k));
      PutU32(out, static_cast<std::uint32_t>(key.size()));
      out.insert(out.end(), key.begin(), key.end());
      PutU32(out, static_cast<std::uint32_t>(value.size()));
      out.insert(out.end(), value.begin(), value.end());
    }
  }
  return out;
}

bool ParseStore(std::span<const std::uint8_t> bytes, MemoryRecordStore& store) {
  if (bytes.size() < 4 || std::memcmp(bytes.data(), kMagic, 4) != 0) return false;
  std::size_t pos = 4;
  auto u32 = [&](std::uint32_t& v) {
    if (bytes.size() - pos < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{bytes[pos + i]} << (8 * i);
    pos += 4;
    return true;
  };
  while (pos < bytes.size()) {
    const std::uint8_t kind = bytes[pos++];
    if (kind >= kRecordKindCount) return false;
    std::uint32_t key_len, value_len;
    if (!u32(key_len) || bytes.size() - pos < key_len) return false;
    std::string key(reinterpret_cast<const char*>(bytes.data() + pos), key_len);
    pos += key_len;
    if (!u32(value_len) || bytes.size() - pos < value_len) return false;
    store.Put(static_cast<RecordKind>(kind), key,
              std::vector<std::uint8_t>(bytes.begin() + pos, bytes.begin() + pos + value_len));
    pos += value_len;
  }
  return true;
}

}  // namespace keepstate::persistence::testing
