// The built-in mutations (keepstate/sdk/builtins.h).
#include "keepstate/sdk/builtins.h"

#include <cstring>
#include <string>

namespace keepstate::sdk {
namespace {

std::string_view Chars(Args bytes) { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }

// One transaction, as the browser's own put/delete: the same validation
// (key and value sizes) on both sides, by the same engine.
Task<Result<Bytes>> Put(Context& ctx, Args args) {
  Result<BlindWrite> w = DecodeBlindWrite(true, args);
  if (!w.ok()) co_return w.status();
  Status s = ctx.Write([&](engine::Txn& txn) { return txn.Put(w->key, *w->value); });
  if (!s.ok()) co_return s;
  co_return Bytes{};
}

Task<Result<Bytes>> Delete(Context& ctx, Args args) {
  Result<BlindWrite> w = DecodeBlindWrite(false, args);
  if (!w.ok()) co_return w.status();
  Status s = ctx.Write([&](engine::Txn& txn) -> Status {
    Result<bool> deleted = txn.Delete(w->key);
    return deleted.ok() ? Status::Ok() : deleted.status();
  });
  if (!s.ok()) co_return s;
  co_return Bytes{};
}

}  // namespace

Mutator FindBuiltin(std::string_view name) {
  if (name == kPutMutation) return Put;
  if (name == kDeleteMutation) return Delete;
  return nullptr;
}

Result<BlindWrite> DecodeBlindWrite(bool put, Args args) {
  if (!put) return BlindWrite{Chars(args), std::nullopt};
  if (args.size() < 4) {
    return Status::InvalidArgument(std::string(kPutMutation) + ": args are " + std::to_string(args.size()) +
                                   " bytes, fewer than the 4 of the key length");
  }
  std::uint32_t key_size = 0;
  std::memcpy(&key_size, args.data(), 4);  // little-endian: wasm and every server we build for
  if (key_size > args.size() - 4) {
    return Status::InvalidArgument(std::string(kPutMutation) + ": key length " + std::to_string(key_size) +
                                   " runs past the args' " + std::to_string(args.size() - 4) + " bytes");
  }
  const std::string_view rest = Chars(args.subspan(4));
  return BlindWrite{rest.substr(0, key_size), rest.substr(key_size)};
}

}  // namespace keepstate::sdk
