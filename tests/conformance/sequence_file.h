// The sequence file of the conformance suite, read natively. The layout is
// specified once, in sequences.mjs (which writes it); this reader mirrors
// it. The file comes from our own generator, but it is still input: a
// damaged one is an error with the byte offset, never a crash.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "keepstate/status.h"

namespace keepstate::conformance {

inline constexpr std::string_view kSequenceMagic = "KSCQ";
inline constexpr std::uint32_t kSequenceFormatVersion = 1;
inline constexpr std::uint8_t kSequenceComparePages = 1;
inline constexpr std::uint8_t kMutationCommitAfter = 1;

struct Mutation {
  std::string name;
  std::vector<std::uint8_t> args;
  bool commit_after = false;
};

struct Sequence {
  std::uint32_t seed = 0;
  bool compare_pages = false;
  std::vector<Mutation> mutations;
};

class SequenceReader {
 public:
  explicit SequenceReader(std::string_view bytes) : bytes_(bytes) {}

  // Every sequence of the file. Errors: Corruption (bad magic, another
  // format version, truncated, bytes after the last sequence).
  Result<std::vector<Sequence>> ReadAll() {
    if (bytes_.substr(0, 4) != kSequenceMagic) return Fail("bad magic");
    at_ = 4;
    std::uint32_t version = 0, count = 0;
    if (!U32(version) || !U32(count)) return Fail("truncated header");
    if (version != kSequenceFormatVersion) return Fail("format version " + std::to_string(version));
    std::vector<Sequence> out;
    out.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
      Sequence s;
      std::uint8_t flags = 0;
      std::uint32_t n = 0;
      if (!U32(s.seed) || !U8(flags) || !U32(n)) return Fail("truncated sequence");
      s.compare_pages = (flags & kSequenceComparePages) != 0;
      s.mutations.reserve(n);
      for (std::uint32_t j = 0; j < n; ++j) {
        Mutation m;
        std::uint16_t name_size = 0;
        std::uint32_t args_size = 0;
        std::string_view name, args;
        if (!U8(flags) || !U16(name_size) || !Bytes(name_size, name) || !U32(args_size) || !Bytes(args_size, args)) {
          return Fail("truncated mutation");
        }
        m.commit_after = (flags & kMutationCommitAfter) != 0;
        m.name = std::string(name);
        m.args.assign(args.begin(), args.end());
        s.mutations.push_back(std::move(m));
      }
      out.push_back(std::move(s));
    }
    if (at_ != bytes_.size()) return Fail("bytes after the last sequence");
    return out;
  }

 private:
  Status Fail(const std::string& why) const {
    return Status::Corruption("sequence file, byte " + std::to_string(at_) + ": " + why);
  }
  bool Bytes(std::size_t n, std::string_view& out) {
    if (bytes_.size() - at_ < n) return false;
    out = bytes_.substr(at_, n);
    at_ += n;
    return true;
  }
  // Little-endian, whatever the host (the file's byte order is fixed).
  template <typename T>
  bool Uint(T& out) {
    std::string_view b;
    if (!Bytes(sizeof(T), b)) return false;
    out = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) out |= static_cast<T>(static_cast<std::uint8_t>(b[i])) << (8 * i);
    return true;
  }
  bool U8(std::uint8_t& out) { return Uint(out); }
  bool U16(std::uint16_t& out) { return Uint(out); }
  bool U32(std::uint32_t& out) { return Uint(out); }

  std::string_view bytes_;
  std::size_t at_ = 0;
};

}  // namespace keepstate::conformance
