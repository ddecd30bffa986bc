// Authorization (docs/sync.md, "Endpoints"): whether a bearer token may
// reach a space, and whose it is. The app may provide its own function
// (tokens from its own accounts); the default reads a token file.
//
// Thread safety: none needed for TokenFile once loaded (read-only).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keepstate/status.h"

namespace keepstate::server {

// fn(space, token) → the token's identity (a client is bound to the identity
// of its first push: another identity gets 403), or an error: the request
// is answered 401 with nothing about the space.
using Authorize = std::function<Result<std::string>(std::string_view space, std::string_view token)>;

// The default: a file of lines `<space or *> <token>`, `#` comments, blank
// lines ignored. A token's identity is derived from the token (a hash: the
// token itself is never stored).
class TokenFile {
 public:
  // Errors: NotFound (cannot read `path`), InvalidArgument (a line that is
  // not `<space or *> <token>`, naming its number).
  static Result<TokenFile> Load(const std::string& path);
  // The same, from the file's text.
  static Result<TokenFile> Parse(std::string_view text);

  Result<std::string> Check(std::string_view space, std::string_view token) const;
  // Check, as an Authorize (REQUIRES: the TokenFile outlives it).
  Authorize AsAuthorize() const {
    return [this](std::string_view space, std::string_view token) { return Check(space, token); };
  }

 private:
  std::vector<std::pair<std::string, std::string>> grants_;  // (space or "*", token)
};

}  // namespace keepstate::server
