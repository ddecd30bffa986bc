// Built-in mutations: the blind writes of a synced store as mutators a
// server can run (docs/sync.md, "What syncs").
//
//   keepstate.put     args: u32 little-endian key length, key, value
//   keepstate.delete  args: key
//
// Names starting with "keepstate." belong to keepstate: sdk::Find answers
// them before the app's registry, and Register refuses them, so an app can
// never shadow a built-in with different behaviour on one side only.
#pragma once

#include <optional>
#include <string_view>

#include "keepstate/sdk/module.h"

namespace keepstate::sdk {

inline constexpr std::string_view kBuiltinPrefix = "keepstate.";
inline constexpr std::string_view kPutMutation = "keepstate.put";
inline constexpr std::string_view kDeleteMutation = "keepstate.delete";

// The built-in named `name`, or nullptr.
Mutator FindBuiltin(std::string_view name);

// A built-in's arguments, decoded. `value` is nullopt for a delete.
struct BlindWrite {
  std::string_view key;
  std::optional<std::string_view> value;
};
// Decodes the args of keepstate.put (put = true) or keepstate.delete.
// Errors: InvalidArgument (truncated, or a key length past the end).
Result<BlindWrite> DecodeBlindWrite(bool put, Args args);

}  // namespace keepstate::sdk
