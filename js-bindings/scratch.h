// ScratchBuffer: the buffer JS stages keys, values and records in before a
// call (keepstate_scratch). malloc'd, so a failed allocation is a null answer
// to JS, never an abort; a buffer grown past 1 MiB is given back when a call
// asks for a quarter of it or less, so one big value does not keep its memory.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace keepstate::wire {

class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }

  // At least `size` bytes (the old contents are not kept), or nullptr if memory
  // cannot grow (the old buffer is gone then too).
  std::uint8_t* Reserve(std::uint32_t size) {
    constexpr std::size_t kKeepBelow = 1u << 20;
    const bool shrink = size_ > kKeepBelow && size <= size_ / 4;
    if (data_ != nullptr && size <= size_ && !shrink) return data_;
    std::free(data_);  // the old one first: the new one may take its place
    const std::size_t want = std::max<std::size_t>(size, 4096);
    data_ = static_cast<std::uint8_t*>(std::malloc(want));
    size_ = data_ == nullptr ? 0 : want;
    return data_;
  }

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace keepstate::wire
