// Private to the persistence library: encodes a manifest record whose page
// table is written by the caller straight into the FlatBuffer, so a commit
// does not build a separate O(page count) array first (65536 entries for a
// 256 MiB state, on every commit).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "keepstate/persistence/format.h"

namespace keepstate::persistence::internal {

// Fills out[i] for every page i (out.size() == page_count). The entries are
// uninitialised on entry and must all be written.
using FillPages = void (*)(void* context, std::span<PageLocation> out);

// As EncodeManifest(header), except that header.pages is ignored and the
// page_count entries come from fill(context, ...).
std::vector<std::uint8_t> EncodeManifestWith(const Manifest& header, std::uint32_t page_count,
                                             FillPages fill, void* context);

}  // namespace keepstate::persistence::internal
