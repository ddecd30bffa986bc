// libFuzzer target over the sync protocol's request decoding
// (server/include/keepstate/server/protocol.h): the input is a request body
// or a poke message, as untrusted as anything from the network. Decoding
// must never crash, hang, throw or allocate beyond its bounds; what decodes
// must hold every bound and invariant of docs/sync.md; base64 that decodes
// must encode back to the same text (only canonical base64 is accepted).
//
// Built only in the native-fuzz preset (server/CMakeLists.txt). Seed corpus:
// tests/server/protocol-corpus/. Run: scripts/run-fuzz <seconds>.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "keepstate/server/protocol.h"

using namespace keepstate;
using namespace keepstate::server;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  Limits limits;  // the server's defaults
  limits.max_mutations = 64;  // small enough that the fuzzer reaches them
  limits.max_keys = 64;
  limits.max_name_bytes = 16;
  limits.max_key_bytes = 32;
  limits.max_args_bytes = 64;

  if (Result<PushRequest> push = DecodePush(input, limits); push.ok()) {
    Check(ValidClient(push->client));
    Check(push->mutations.size() <= limits.max_mutations);
    for (std::size_t i = 0; i < push->mutations.size(); ++i) {
      const Mutation& m = push->mutations[i];
      Check(m.id >= 1);
      Check(i == 0 || m.id == push->mutations[i - 1].id + 1);
      Check(!m.name.empty() && m.name.size() <= limits.max_name_bytes);
      Check(m.args.size() <= limits.max_args_bytes);
    }
  } else {
    const Code c = push.status().code();
    Check(c == Code::kInvalidArgument || c == Code::kOutOfSpace);
  }

  if (Result<PullRequest> pull = DecodePull(input, limits); pull.ok()) {
    Check(ValidClient(pull->client));
    Check(pull->keys.size() <= limits.max_keys);
    for (const std::string& k : pull->keys) Check(!k.empty() && k.size() <= limits.max_key_bytes);
    // Its answer encodes (any bytes as keys and values).
    PullResponse r;
    for (const std::string& k : pull->keys) r.entries.emplace_back(k, k);
    Check(!EncodePull(r).empty());
  } else {
    const Code c = pull.status().code();
    Check(c == Code::kInvalidArgument || c == Code::kOutOfSpace);
  }

  (void)DecodePokeHello(input);
  if (Result<std::string> bytes = Base64Decode(input); bytes.ok()) Check(Base64Encode(*bytes) == input);
  Check(*Base64Decode(Base64Encode(input)) == input);
  return 0;
}
