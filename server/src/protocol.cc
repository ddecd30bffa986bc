#include "keepstate/server/protocol.h"

#include <boost/json.hpp>

#include <new>

namespace keepstate::server {
namespace json = boost::json;

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool Name(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

Status Bad(std::string m) { return Status::InvalidArgument(std::move(m)); }

// Parses a body of JSON with a small depth bound (the protocol's documents
// are three levels deep). Boost.JSON reports errors by code; it may still
// throw bad_alloc, caught here.
Result<json::value> Parse(std::string_view body) {
  json::parse_options options;
  options.max_depth = 8;
  try {
    json::error_code ec;
    json::value v = json::parse(json::string_view(body.data(), body.size()), ec, {}, options);
    if (ec) return Bad("the body is not JSON: " + ec.message());
    return v;
  } catch (const std::bad_alloc&) {
    return Status::OutOfSpace("the body is too large to parse");
  } catch (const std::exception& e) {
    return Bad(std::string("the body is not JSON: ") + e.what());
  }
}

Result<const json::object*> Object(const json::value& v, const char* what) {
  if (!v.is_object()) return Bad(std::string(what) + " must be an object");
  return &v.get_object();
}

Result<const json::value*> Field(const json::object& o, const char* name) {
  auto it = o.find(name);
  if (it == o.end()) return Bad(std::string("\"") + name + "\" is missing");
  return &it->value();
}

Result<std::string_view> String(const json::value& v, const char* what) {
  if (!v.is_string()) return Bad(std::string(what) + " must be a string");
  const json::string& s = v.get_string();
  return std::string_view(s.data(), s.size());
}

// A non-negative integer (JSON numbers without fraction or exponent).
Result<std::uint64_t> Unsigned(const json::value& v, const char* what) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<std::uint64_t>(v.get_int64());
  return Bad(std::string(what) + " must be a non-negative integer");
}

Result<std::string> Client(const json::object& o) {
  KEEPSTATE_ASSIGN_OR_RETURN(const json::value* v, Field(o, "client"));
  KEEPSTATE_ASSIGN_OR_RETURN(std::string_view client, String(*v, "\"client\""));
  if (!ValidClient(client)) return Bad("\"client\" must match [A-Za-z0-9_-]{8,64}");
  return std::string(client);
}

// The decoded size of base64 text of `n` characters (an upper bound).
std::size_t DecodedSize(std::size_t n) { return n / 4 * 3; }

json::array Failed(const std::vector<Failure>& failed) {
  json::array a;
  for (const Failure& f : failed) {
    a.push_back(json::object{{"id", f.id}, {"code", f.code}, {"message", f.message}});
  }
  return a;
}

}  // namespace

bool ValidSpace(std::string_view space) {
  if (space.empty() || space.size() > 128) return false;
  for (char c : space) {
    if (!Name(c) && c != '.') return false;
  }
  return true;
}

bool ValidClient(std::string_view client) {
  if (client.size() < 8 || client.size() > 64) return false;
  for (char c : client) {
    if (!Name(c)) return false;
  }
  return true;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16 | static_cast<std::uint8_t>(bytes[i + 1]) << 8 |
                            static_cast<std::uint8_t>(bytes[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], kAlphabet[v & 63]};
  }
  if (bytes.size() - i == 1) {
    const std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (bytes.size() - i == 2) {
    const std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16 | static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Bad("base64 length is not a multiple of 4");
  std::string out;
  out.reserve(DecodedSize(text.size()));
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    int s[4];
    for (int k = 0; k < 4 - pad; ++k) {
      s[k] = Sextet(text[i + k]);
      if (s[k] < 0) return Bad("base64 has a character outside its alphabet");
    }
    for (int k = 4 - pad; k < 4; ++k) s[k] = 0;
    const std::uint32_t v = s[0] << 18 | s[1] << 12 | s[2] << 6 | s[3];
    out.push_back(static_cast<char>(v >> 16));
    if (pad < 2) out.push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xff));
    // Canonical: the bits the padding drops must be zero.
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) return Bad("base64 has non-zero pad bits");
  }
  return out;
}

Result<PushRequest> DecodePush(std::string_view body, const Limits& limits) {
  if (body.size() > limits.max_body) return Status::OutOfSpace("the body is larger than " + std::to_string(limits.max_body) + " bytes");
  KEEPSTATE_ASSIGN_OR_RETURN(json::value doc, Parse(body));
  KEEPSTATE_ASSIGN_OR_RETURN(const json::object* o, Object(doc, "a push"));
  PushRequest request;
  KEEPSTATE_ASSIGN_OR_RETURN(request.client, Client(*o));
  KEEPSTATE_ASSIGN_OR_RETURN(const json::value* list, Field(*o, "mutations"));
  if (!list->is_array()) return Bad("\"mutations\" must be an array");
  const json::array& mutations = list->get_array();
  if (mutations.size() > limits.max_mutations) {
    return Status::OutOfSpace("a push holds at most " + std::to_string(limits.max_mutations) + " mutations");
  }
  request.mutations.reserve(mutations.size());
  for (const json::value& item : mutations) {
    KEEPSTATE_ASSIGN_OR_RETURN(const json::object* m, Object(item, "a mutation"));
    Mutation mutation;
    KEEPSTATE_ASSIGN_OR_RETURN(const json::value* id, Field(*m, "id"));
    KEEPSTATE_ASSIGN_OR_RETURN(mutation.id, Unsigned(*id, "\"id\""));
    if (mutation.id == 0 || mutation.id > (std::uint64_t{1} << 53)) return Bad("\"id\" must be in 1..2^53");
    if (!request.mutations.empty() && mutation.id != request.mutations.back().id + 1) {
      return Bad("mutation ids must ascend by 1: " + std::to_string(mutation.id) + " follows " +
                 std::to_string(request.mutations.back().id));
    }
    KEEPSTATE_ASSIGN_OR_RETURN(const json::value* name, Field(*m, "name"));
    KEEPSTATE_ASSIGN_OR_RETURN(std::string_view n, String(*name, "\"name\""));
    if (n.empty()) return Bad("\"name\" must not be empty");
    if (n.size() > limits.max_name_bytes) {
      return Status::OutOfSpace("a mutator name has at most " + std::to_string(limits.max_name_bytes) + " bytes");
    }
    mutation.name = std::string(n);
    KEEPSTATE_ASSIGN_OR_RETURN(const json::value* args, Field(*m, "args"));
    KEEPSTATE_ASSIGN_OR_RETURN(std::string_view a, String(*args, "\"args\""));
    if (DecodedSize(a.size()) > limits.max_args_bytes + 2) {
      return Status::OutOfSpace("args hold at most " + std::to_string(limits.max_args_bytes) + " bytes");
    }
    KEEPSTATE_ASSIGN_OR_RETURN(mutation.args, Base64Decode(a));
    if (mutation.args.size() > limits.max_args_bytes) {
      return Status::OutOfSpace("args hold at most " + std::to_string(limits.max_args_bytes) + " bytes");
    }
    request.mutations.push_back(std::move(mutation));
  }
  return request;
}

Result<PullRequest> DecodePull(std::string_view body, const Limits& limits) {
  if (body.size() > limits.max_body) return Status::OutOfSpace("the body is larger than " + std::to_string(limits.max_body) + " bytes");
  KEEPSTATE_ASSIGN_OR_RETURN(json::value doc, Parse(body));
  KEEPSTATE_ASSIGN_OR_RETURN(const json::object* o, Object(doc, "a pull"));
  PullRequest request;
  KEEPSTATE_ASSIGN_OR_RETURN(request.client, Client(*o));
  KEEPSTATE_ASSIGN_OR_RETURN(const json::value* since, Field(*o, "since"));
  KEEPSTATE_ASSIGN_OR_RETURN(request.since, Unsigned(*since, "\"since\""));
  // "keys" may be left out: no pending work.
  if (auto it = o->find("keys"); it != o->end()) {
    if (!it->value().is_array()) return Bad("\"keys\" must be an array");
    const json::array& keys = it->value().get_array();
    if (keys.size() > limits.max_keys) {
      return Status::OutOfSpace("a pull names at most " + std::to_string(limits.max_keys) + " keys");
    }
    request.keys.reserve(keys.size());
    for (const json::value& k : keys) {
      KEEPSTATE_ASSIGN_OR_RETURN(std::string_view text, String(k, "a key"));
      if (DecodedSize(text.size()) > limits.max_key_bytes + 2) {
        return Status::OutOfSpace("a key has at most " + std::to_string(limits.max_key_bytes) + " bytes");
      }
      KEEPSTATE_ASSIGN_OR_RETURN(std::string key, Base64Decode(text));
      if (key.empty()) return Bad("a key must not be empty");
      if (key.size() > limits.max_key_bytes) {
        return Status::OutOfSpace("a key has at most " + std::to_string(limits.max_key_bytes) + " bytes");
      }
      request.keys.push_back(std::move(key));
    }
  }
  return request;
}

Result<std::string> DecodePokeHello(std::string_view message) {
  if (message.size() > 4096) return Status::OutOfSpace("the first message has at most 4096 bytes");
  KEEPSTATE_ASSIGN_OR_RETURN(json::value doc, Parse(message));
  KEEPSTATE_ASSIGN_OR_RETURN(const json::object* o, Object(doc, "the first message"));
  KEEPSTATE_ASSIGN_OR_RETURN(const json::value* token, Field(*o, "token"));
  KEEPSTATE_ASSIGN_OR_RETURN(std::string_view t, String(*token, "\"token\""));
  return std::string(t);
}

std::string EncodePush(const PushResponse& r) {
  return json::serialize(
      json::object{{"lastMutationId", r.last_mutation_id}, {"version", r.version}, {"failed", Failed(r.failed)}});
}

namespace {

// `[[key, value or null], ...]`, base64 (pull answers and poke patches).
json::array Entries(const std::vector<std::pair<std::string, std::optional<std::string>>>& entries) {
  json::array out;
  out.reserve(entries.size());
  for (const auto& [key, value] : entries) {
    json::array e{json::string(Base64Encode(key))};
    if (value) {
      e.push_back(json::string(Base64Encode(*value)));
    } else {
      e.push_back(nullptr);
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

std::string EncodePull(const PullResponse& r) {
  json::object o{{"version", r.version}, {"lastMutationId", r.last_mutation_id}, {"failed", Failed(r.failed)}};
  if (r.full) {
    o["full"] = true;
  } else {
    o["entries"] = Entries(r.entries);
  }
  return json::serialize(o);
}

std::string EncodePoke(std::uint64_t version, const PokePatch* patch) {
  json::object o{{"version", version}};
  if (patch != nullptr) {
    o["from"] = patch->from;
    o["entries"] = Entries(patch->entries);
  }
  return json::serialize(o);
}

std::string EncodeError(std::string_view message) {
  return json::serialize(json::object{{"error", json::string_view(message.data(), message.size())}});
}

}  // namespace keepstate::server
