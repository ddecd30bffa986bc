// The wire format of docs/sync.md: request bodies decoded and bounded,
// response bodies encoded. Pure functions (no I/O, no state), so a fuzzer
// calls them directly and the HTTP layer only routes.
//
// Everything decoded here comes from the network: every bound of
// docs/sync.md ("Limits") is checked, and what breaks one is an error value
// that names it — InvalidArgument (answered 400) or OutOfSpace (413) —
// never a crash, an exception or an unbounded allocation.
//
// Thread safety: none needed (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keepstate/server/space_store.h"
#include "keepstate/status.h"

namespace keepstate::server {

// docs/sync.md, "Limits": the server's defaults.
struct Limits {
  std::size_t max_body = 16u << 20;
  std::size_t max_mutations = 10000;
  std::size_t max_keys = 100000;
  std::size_t max_key_bytes = 1024;
  std::size_t max_args_bytes = 16u << 20;
  std::size_t max_name_bytes = 256;
};

struct Mutation {
  std::uint64_t id = 0;
  std::string name;
  std::string args;  // bytes
};

struct PushRequest {
  std::string client;
  std::vector<Mutation> mutations;  // ascending ids without gaps
};

struct PullRequest {
  std::string client;
  std::uint64_t since = 0;
  std::vector<std::string> keys;  // bytes
};

struct PushResponse {
  std::uint64_t last_mutation_id = 0;
  std::uint64_t version = 0;
  std::vector<Failure> failed;
};

struct PullResponse {
  std::uint64_t version = 0;
  std::uint64_t last_mutation_id = 0;
  std::vector<Failure> failed;
  bool full = false;  // entries are absent: download the snapshot
  // Key order; nullopt value: absent at `version`.
  std::vector<std::pair<std::string, std::optional<std::string>>> entries;
};

// `[A-Za-z0-9._-]{1,128}`.
bool ValidSpace(std::string_view space);
// `[A-Za-z0-9_-]{8,64}`.
bool ValidClient(std::string_view client);

// RFC 4648 base64 with padding. Decode errors: InvalidArgument (bad
// alphabet, length or padding, or non-zero pad bits).
std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

// Errors (every decoder): InvalidArgument (not JSON, a field missing, of the
// wrong type, or out of its domain; ids not ascending and gap-free),
// OutOfSpace (a count or size above `limits`).
Result<PushRequest> DecodePush(std::string_view body, const Limits& limits = {});
Result<PullRequest> DecodePull(std::string_view body, const Limits& limits = {});
// The poke socket's first message, `{"token": "..."}`: the token.
Result<std::string> DecodePokeHello(std::string_view message);

std::string EncodePush(const PushResponse& response);
std::string EncodePull(const PullResponse& response);
// A poke: the space's version, and with `patch` the entries one commit
// changed from version `patch->from` (docs/sync.md, "poke"): a client at that
// version with nothing pending adopts them without a pull.
struct PokePatch {
  std::uint64_t from = 0;
  std::vector<std::pair<std::string, std::optional<std::string>>> entries;  // as PullResponse's
};
std::string EncodePoke(std::uint64_t version, const PokePatch* patch = nullptr);
// `{"error": message}`, the body of every answer that is not 200.
std::string EncodeError(std::string_view message);

}  // namespace keepstate::server
