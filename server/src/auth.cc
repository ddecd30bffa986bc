#include "keepstate/server/auth.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace keepstate::server {
namespace {

bool Space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Compares in time independent of where the first difference is, so the
// answer's timing does not reveal a prefix of a valid token.
bool SameToken(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

Result<TokenFile> TokenFile::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read the token file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str());
}

Result<TokenFile> TokenFile::Parse(std::string_view text) {
  TokenFile file;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && Space(line[i])) ++i;
      const std::size_t start = i;
      while (i < line.size() && !Space(line[i])) ++i;
      if (i > start) words.push_back(line.substr(start, i - start));
    }
    if (words.empty()) continue;
    if (words.size() != 2) {
      return Status::InvalidArgument("token file line " + std::to_string(line_number) +
                                     ": expected `<space or *> <token>`");
    }
    file.grants_.emplace_back(words[0], words[1]);
  }
  return file;
}

Result<std::string> TokenFile::Check(std::string_view space, std::string_view token) const {
  bool granted = false;
  for (const auto& [where, t] : grants_) {
    if ((where == "*" || where == space) && SameToken(t, token)) granted = true;
  }
  if (!granted || token.empty()) return Status::NotFound("no such token for this space");
  char identity[40];
  std::snprintf(identity, sizeof identity, "token:%016llx",
                static_cast<unsigned long long>(XXH3_64bits(token.data(), token.size())));
  return std::string(identity);
}

}  // namespace keepstate::server
