// The conformance suite's hashes, natively. Their definition is written
// once, in hash.mjs (the wasm side computes them there); this mirrors it:
// 64-bit FNV-1a over fields, field(b) = u32 little-endian size, then b.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace keepstate::conformance {

class Fnv64 {
 public:
  Fnv64& Bytes(std::string_view b) {
    for (unsigned char c : b) {
      h_ ^= c;
      h_ *= 0x100000001b3ull;
    }
    return *this;
  }
  Fnv64& Field(std::string_view b) {
    const auto n = static_cast<std::uint32_t>(b.size());
    const char size[4] = {static_cast<char>(n), static_cast<char>(n >> 8), static_cast<char>(n >> 16),
                          static_cast<char>(n >> 24)};
    return Bytes(std::string_view(size, 4)).Bytes(b);
  }
  std::string Hex() const {
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h_));
    return out;
  }

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ull;
};

// One mutation's outcome (hash.mjs, foldOutcome): its status code name,
// then its result bytes if ok, else its message.
inline Fnv64& FoldOutcome(Fnv64& h, std::string_view code, std::string_view bytes) {
  return h.Field(code).Field(bytes);
}

}  // namespace keepstate::conformance
